declare module 'deltatune:tfjs-gradients';
