/**
 * Which part of src/ may import which: model <- controller <- adapters, the
 * generic Kubernetes plumbing (src/kube) under the adapters that share it,
 * wiring only in app.ts, and no import cycle between files. Read with the
 * TypeScript parser: static imports, `export ... from` and `import()`,
 * type-only ones included (a type import still ties one module to another).
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const src = path.join(root, "src");

/**
 * Each area and what it may import besides itself. Adapters import inward
 * (model, controller, kube), never each other, except where one is the
 * other's client by design (the CLI drives the client library; the client
 * speaks the HTTP adapter's wire types; metrics measure the HTTP server and
 * the loop; configuration parses the settings the adapters define).
 */
const ALLOWED: Record<string, readonly string[]> = {
  model: [],
  support: ["model"],
  controller: ["model", "support"],
  kube: ["model", "support"],
  store: ["model", "support", "controller"],
  crd: ["model", "support", "controller", "kube", "config"],
  // A runtime module reads its slice of the configuration (src/runtime/module.ts).
  runtime: ["model", "support", "controller", "kube", "config"],
  "runtime/docker": ["model", "support", "controller", "runtime", "config"],
  "runtime/kubernetes": ["model", "support", "controller", "kube", "runtime", "config"],
  http: ["model", "support", "controller", "config"],
  metrics: ["model", "support", "controller", "http"],
  client: ["model", "support", "controller", "http"],
  // config: rtmctl reads RTMANAGER_INTERNAL_HTTP_ADDR with the server's own parser.
  cli: ["model", "support", "controller", "client", "config"],
  config: ["model", "support", "runtime", "http"],
  main: ["model", "support", "config", "app"],
};

/** The top-level files that are not wiring: leaves every area may use, configuration, metrics. */
const TOP_LEVEL: Record<string, string> = {
  "log.ts": "support",
  "buildInfo.ts": "support",
  "isMain.ts": "support",
  "config.ts": "config",
  "configDocs.ts": "config",
  "configParsers.ts": "config",
  "configRead.ts": "config",
  "httpConfig.ts": "config",
  "metrics.ts": "metrics",
  "main.ts": "main",
  "app.ts": "app",
  // The app's start and stop, split from app.ts to keep each function short: part of the wiring.
  "appLifecycle.ts": "app",
  // Composes the store's and the runtime's checks into GET /readyz: part of the wiring.
  "readiness.ts": "app",
};

function areaOf(file: string): string {
  const rel = path.relative(src, file).split(path.sep);
  if (rel.length === 1) {
    const area = TOP_LEVEL[rel[0]!];
    if (!area) throw new Error(`src/${rel[0]} belongs to no area: add it to TOP_LEVEL in ${path.basename(fileURLToPath(import.meta.url))}`);
    return area;
  }
  if (rel[0] === "runtime" && rel.length > 2) return `runtime/${rel[1]}`;
  return rel[0]!;
}

function sources(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sources(full);
    return e.name.endsWith(".ts") ? [full] : [];
  });
}

/** The src files `file` imports, resolved (`./x.js` -> `./x.ts`). */
function importsOf(file: string): string[] {
  const sf = ts.createSourceFile(file, fs.readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const specs: string[] = [];
  const visit = (node: ts.Node) => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      specs.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteral(node.arguments[0])) {
      specs.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return specs.filter((s) => s.startsWith(".")).map((s) => path.resolve(path.dirname(file), s).replace(/\.js$/, ".ts"));
}

const files = sources(src);
const graph = new Map(files.map((f) => [f, importsOf(f)]));
const rel = (f: string) => path.relative(root, f);

/** Every cycle found by a depth-first walk, each as the files around it. */
function cycles(): string[][] {
  const state = new Map<string, "open" | "done">();
  const found: string[][] = [];
  const walk = (f: string, stack: string[]) => {
    state.set(f, "open");
    stack.push(f);
    for (const to of graph.get(f) ?? []) {
      if (state.get(to) === "open") found.push([...stack.slice(stack.indexOf(to)), to].map(rel));
      else if (!state.has(to)) walk(to, stack);
    }
    stack.pop();
    state.set(f, "done");
  };
  for (const f of files) if (!state.has(f)) walk(f, []);
  return found;
}

describe("dependency direction", () => {
  it("every import resolves to a file in src/ (so nothing below escapes the check)", () => {
    const missing = [...graph].flatMap(([from, tos]) => tos.filter((to) => !graph.has(to)).map((to) => `${rel(from)} -> ${rel(to)}`));
    expect(missing).toEqual([]);
  });

  it("each area imports only the areas under it: model <- controller <- adapters, kube under the Kubernetes adapters", () => {
    const upward: string[] = [];
    for (const [from, tos] of graph) {
      const a = areaOf(from);
      if (a === "app") continue;
      for (const to of tos) {
        const b = areaOf(to);
        if (b !== a && !ALLOWED[a]!.includes(b)) upward.push(`${rel(from)} (${a}) -> ${rel(to)} (${b})`);
      }
    }
    expect(upward).toEqual([]);
  });

  it("wiring only in app.ts: nothing but main.ts imports it", () => {
    const app = path.join(src, "app.ts");
    const importers = [...graph].filter(([, tos]) => tos.includes(app)).map(([from]) => rel(from));
    expect(importers).toEqual(["src/main.ts"]);
  });

  it("no adapter reaches into another: a runtime never imports the GameRuntime source, nor one runtime the other", () => {
    // Implied by ALLOWED; stated on its own because it is the rule a new runtime is most likely to break.
    const crossed = [...graph].flatMap(([from, tos]) => {
      const a = areaOf(from);
      if (!a.startsWith("runtime/") && a !== "crd") return [];
      return tos.filter((to) => {
        const b = areaOf(to);
        return b !== a && (b.startsWith("runtime/") || b === "crd");
      }).map((to) => `${rel(from)} -> ${rel(to)}`);
    });
    expect(crossed).toEqual([]);
  });

  it("no import cycle between files", () => {
    expect(cycles()).toEqual([]);
  });
});
