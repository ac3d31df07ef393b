/**
 * What every game engine serves, whatever runs it: one HTTP port with
 * /healthz (and the game API). The runtime adapter exposes it, the prober and
 * the record's engine endpoint point at it.
 */
export const ENGINE_PORT = 8080;
