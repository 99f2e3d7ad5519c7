/** Baton's version (the CLI's --version, OpenAPI's info.version); a module of its own so the CLI can start light. */
export const VERSION = '0.1.0'
