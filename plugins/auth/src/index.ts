export { authPlugin, createAuthPlugin, type AuthPluginOptions } from './auth-plugin.js';
export { authAdminRef, type AuthAdmin } from './auth-admin.js';
export { TokenAuth } from './token-auth.js';
export { BUILTIN_ROLES, BUILTIN_PERMISSIONS, setGrants, patternGrants, type PermissionSet } from './roles.js';
export { hostSharedRateLimits } from './rate-limits.js';
