/**
 * Quarantine metrics: a gauge of the images quarantined now (every replica
 * reports the store's set, as last read) and a counter of quarantines this
 * replica's loop imposed. Labels never carry the image: an operator finds it
 * with `rtmctl quarantine list`.
 */
import { Counter, type Registry } from "prom-client";
import { scrapeGauge } from "./gauge.js";

export interface QuarantineMetrics {
  onImposed(): void;
}

export function quarantineMetrics(registry: Registry, activeCount: () => number): QuarantineMetrics {
  scrapeGauge(registry, { name: "rtmanager_images_quarantined", help: "Images quarantined now: their patches kept rolling back, and further patches to them are refused until lifted." }, (g) =>
    g.set(activeCount()),
  );
  const imposed = new Counter({ name: "rtmanager_image_quarantines_total", help: "Image quarantines imposed by this replica's loop.", registers: [registry] });
  return { onImposed: () => imposed.inc() };
}
