import { ARCHITECTURES } from '../helpers/fixtures.js';
import { checkArchitecture } from '../helpers/layer-checks.js';

// Linear (with and without bias, dense and sequence inputs), ReLU, GELU, tanh, sigmoid, and the
// three losses; each architecture gets the whole battery of checks.
for (const arch of ARCHITECTURES) checkArchitecture(arch);
