export { PLUGIN_DEFINITIONS } from './schemas.ts';
export type * from './types.ts';
