/**
 * The Pod runtime's event stream: each change the cache's Pod watch sees
 * (src/runtime/kubernetes/podCache.ts), reported as an EngineEvent naming its
 * game; a relist after a gap asks the loop to resync.
 */
import type { WatchEventType } from "../../kube/reflector.js";
import type { EngineChange, EngineEventHandlers } from "../../model/ports.js";
import { observedFromPod } from "./observed.js";
import type { CachedPod, CachedService, PodCache } from "./podCache.js";

function changeOf(type: WatchEventType, pod: CachedPod, instance: string): EngineChange {
  if (type === "ADDED") return "created";
  if (type === "DELETED") return "removed";
  return observedFromPod(pod, instance)?.phase === "running" ? "started" : "exited";
}

export function watchPods(cache: PodCache, instance: string, handlers: EngineEventHandlers, onServiceGone?: (service: CachedService) => void): () => void {
  const unsubscribe = cache.subscribe({
    onServiceGone,
    onPod: (type, pod) => {
      const observed = observedFromPod(pod, instance);
      if (!observed) return;
      handlers.onEvent({ gameId: observed.gameId, engineId: observed.id, change: changeOf(type, pod, instance), exitCode: observed.exitCode });
    },
    // Events may have been missed: the loop resyncs everything.
    onRelist: () => handlers.onReconnect(),
    onWatchError: (err) => handlers.onDisconnect(err),
  });
  // The cache's watches start with the first read; the event stream may be the first.
  void cache.ready(0);
  return unsubscribe;
}
