/**
 * One module per engine runtime (src/runtime/<name>/module.ts): everything
 * app.ts needs to run it, so choosing a runtime is one lookup by name
 * (RTMANAGER_RUNTIME) and a new runtime is one new module, no edit of the
 * controller or of the wiring's logic.
 */
import type { Config } from "../config.js";
import type { RuntimeEventStream } from "../controller/manager.js";
import type { PodPlacement } from "../kube/placement.js";
import type { Logger } from "../log.js";
import type { RuntimePort } from "../model/ports.js";
import type { RuntimeCallOutcome } from "../model/runtimeFailure.js";

export interface RuntimeModuleDeps {
  config: Config;
  logger: Logger;
  /** Each API call the runtime makes, for the call metrics. */
  onCall?: (operation: string, outcome: RuntimeCallOutcome, seconds: number) => void;
  /**
   * Set when declarations are GameRuntime objects: each game's objects go to
   * its object's namespace, owned by it (src/crd/placement.ts), and the
   * runtime lists where the source watches. A runtime without namespaces
   * ignores it.
   */
  gameRuntimes?: { placement(fallbackNamespace: string): PodPlacement; watchNamespace: string | null };
}

/** Why the runtime cannot serve yet: GET /readyz serves `reason` and logs `detail`; the start-up error says all three. */
export interface RuntimeNotReady {
  /** Names the runtime and the setting involved; served, so it carries no address. */
  reason: string;
  /** The underlying error (may name the API server): logged, not served. */
  detail?: string;
  /** What to do about it. */
  fix?: string;
}

export interface RuntimeModule {
  /** The RTMANAGER_RUNTIME value that chooses it; also the runtime's name in messages. */
  readonly name: string;
  /** The settings only this runtime reads: each has its row in CONFIG_DOCS (src/configDocs.ts) and the README's table. */
  readonly settings: readonly string[];
  /** Its event stream's metric label and liveness rule. */
  readonly events: RuntimeEventStream;
  /** Where engines attach, in the runtime's terms (a Docker network, a namespace): the record's docker_network when the runtime reports none. */
  network(config: Config): string;
  /** Loads what the runtime needs (lazily: the Pod runtime's client costs ~70 MB of RSS) and builds it. */
  create(deps: RuntimeModuleDeps): Promise<RuntimePort>;
  /** How long released state (a game's storage, once its engine was removed) is kept before the leader deletes it; absent or 0: kept for good. */
  stateRetentionMs?(config: Config): number;
  /** What start-up and readiness check once `ping` answered: what the runtime needs exists. null: ready. */
  ready(runtime: RuntimePort, config: Config): Promise<RuntimeNotReady | null>;
}
