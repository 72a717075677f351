export { serve, type ServeOptions } from './serve.js';
export { defaultPlugins } from './default-plugins.js';
