/**
 * The controller and the runtime port speak no runtime's language: a third
 * runtime (Swarm services, Nomad jobs) must fit without a Docker word in the
 * code that plans and acts. The only Docker words allowed are the contract's
 * own names (docker_network, docker_unavailable, in either spelling), since
 * the contract is law. Comments count: they are read as the design.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(import.meta.dirname, "../..");

/** Docker's vocabulary: its name, its API's words on the old port, and its container states and event actions as literals. */
const DOCKER_WORDS = /\b\w*(?:docker|moby|nanocpus|networkexists|imagelabels)\w*\b|"(?:restarting|paused|removing|dead|die|destroy|kill)"/gi;

function snakeToCamel(s: string): string {
  return s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());
}

/** Every identifier of the internal contract that carries a Docker word, as it is written there and in camelCase. */
function contractNames(): Set<string> {
  const yaml = readFileSync(path.join(ROOT, "contract/internal-openapi.yaml"), "utf8");
  const names = new Set<string>();
  for (const [name] of yaml.matchAll(/\b[a-z]+(?:_[a-z]+)*_?docker\w*|\bdocker_\w+/g)) {
    names.add(name);
    names.add(snakeToCamel(name));
  }
  return names;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return tsFiles(full);
    return full.endsWith(".ts") ? [full] : [];
  });
}

/** `file:line: word` for each Docker word outside the contract's names. */
export function dockerWords(files: string[], allowed: Set<string>): string[] {
  const found: string[] = [];
  for (const file of files) {
    readFileSync(file, "utf8")
      .split("\n")
      .forEach((line, i) => {
        for (const [word] of line.matchAll(DOCKER_WORDS)) {
          if (!allowed.has(word)) found.push(`${path.relative(ROOT, file)}:${i + 1}: ${word}`);
        }
      });
  }
  return found;
}

describe("no runtime's words in the controller or the runtime port", () => {
  const allowed = contractNames();

  it("allows only the contract's own names", () => {
    expect([...allowed].sort()).toEqual(["dockerNetwork", "dockerUnavailable", "docker_network", "docker_unavailable"]);
  });

  it("src/controller/ and src/model/ports.ts carry no Docker word beyond them", () => {
    const files = [...tsFiles(path.join(ROOT, "src/controller")), path.join(ROOT, "src/model/ports.ts")];
    expect(files.length).toBeGreaterThan(20);
    expect(dockerWords(files, allowed)).toEqual([]);
  });

  it("would catch one: the check reads what it claims to", () => {
    // The Docker adapter is full of them; a check that finds none there is broken.
    const adapter = dockerWords(tsFiles(path.join(ROOT, "src/runtime/docker")), allowed);
    expect(adapter.some((w) => / Docker$/.test(w))).toBe(true);
    expect(adapter.some((w) => /: "dead"$/.test(w))).toBe(true);
  });
});
