/**
 * The Pod runtime's event stream: a reflector over this installation's Pods
 * (list, then watch with bookmarks, 410 and silence handled), each change
 * reported as an EngineEvent naming its game.
 */
import type { KubeConfig, V1Pod } from "@kubernetes/client-node";
import { Reflector, type ListerWatcher, type WatchEventType } from "../../crd/reflector.js";
import type { Logger } from "../../log.js";
import type { EngineEvent, EngineEventHandlers } from "../../model/ports.js";
import { observedFromPod } from "./observed.js";

type ReflectedPod = V1Pod & { metadata: { name: string; namespace?: string; resourceVersion?: string } };

function actionOf(type: WatchEventType, pod: V1Pod, instance: string): EngineEvent["action"] {
  if (type === "ADDED") return "create";
  if (type === "DELETED") return "destroy";
  const state = observedFromPod(pod, instance)?.state;
  return state === "running" ? "start" : "die";
}

export interface PodWatchOptions {
  kubeConfig: KubeConfig;
  instance: string;
  lister: Omit<ListerWatcher<V1Pod>, "isObject">;
  logger: Logger;
  silenceLimitMs: number;
}

export function watchPods(options: PodWatchOptions, handlers: EngineEventHandlers): () => void {
  const { instance } = options;
  const lister: ListerWatcher<ReflectedPod> = {
    ...options.lister,
    list: async () => {
      const { items, resourceVersion } = await options.lister.list();
      return { items: items as ReflectedPod[], resourceVersion };
    },
    isObject: (v): v is ReflectedPod => typeof v === "object" && v !== null && typeof (v as V1Pod).metadata?.name === "string",
  };
  const emit = (type: WatchEventType, pod: V1Pod) => {
    const observed = observedFromPod(pod, instance);
    if (!observed) return;
    handlers.onEvent({ gameId: observed.gameId, containerId: observed.id, action: actionOf(type, pod, instance), exitCode: observed.exitCode });
  };
  const reflector = new Reflector<ReflectedPod>({
    kind: "Pod",
    kubeConfig: options.kubeConfig,
    lister,
    logger: options.logger,
    silenceLimitMs: options.silenceLimitMs,
    backoff: { baseMs: 250, maxMs: 30_000 },
    listener: {
      onEvent: (type, obj) => emit(type, obj),
      // A relist after a gap: events may have been missed, so the loop resyncs everything.
      onReplace: (_why, _changes, first) => {
        if (!first) handlers.onReconnect();
      },
    },
    hooks: { onWatchError: (err) => handlers.onDisconnect(err) },
  });
  void reflector.start();
  return () => void reflector.stop();
}
