import { machineBootHooks } from '../kernel/machine.js';
import { installCoherence } from './coherence.js';

/**
 * The sanitizers that watch every machine (always on once this module is loaded; the package
 * root loads it). The runtime's own checks (lockdep, deadlock, might-sleep), RAM's frame
 * use-after-free check and the shutdown leak checks live with the code they watch.
 */
machineBootHooks.push(installCoherence);

export { installCoherence };
