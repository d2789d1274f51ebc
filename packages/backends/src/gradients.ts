// Registers tfjs's gradient definitions (tfjs-core alone registers none): the build bundles them
// against the public tfjs-core API, see build/tfjs-gradients-plugin.ts.
import 'deltatune:tfjs-gradients';
