/**
 * Images you can trace (issue 22 part 12): the documented build command
 * (`npm run -s image`, scripts/build-image.sh) passes the commit and the OCI
 * label values, and the Dockerfile turns each into a label and RTMANAGER_COMMIT
 * into the environment buildInfo reads. A stub `docker` records the command
 * line: nothing is built here.
 */
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const dockerfile = readFileSync(path.join(root, "deploy/Dockerfile"), "utf8");
const stubDir = mkdtempSync(path.join(os.tmpdir(), "rtm-image-"));
afterAll(() => rmSync(stubDir, { recursive: true, force: true }));

function buildArgs(env: Record<string, string> = {}): string[] {
  const out = path.join(stubDir, "args");
  writeFileSync(path.join(stubDir, "docker"), `#!/bin/sh\nprintf '%s\\n' "$@" > '${out}'\n`);
  chmodSync(path.join(stubDir, "docker"), 0o755);
  execFileSync("bash", [path.join(root, "scripts/build-image.sh")], {
    cwd: root,
    env: { ...process.env, PATH: `${stubDir}:${process.env.PATH ?? ""}`, DOCKER_GID: "999", ...env },
    stdio: ["ignore", "ignore", "ignore"],
    timeout: 20_000,
  });
  return readFileSync(out, "utf8").trim().split("\n");
}

const argValue = (args: string[], name: string) => args.map((a, i) => (args[i - 1] === "--build-arg" && a.startsWith(`${name}=`) ? a.slice(name.length + 1) : null)).find((v) => v !== null);

describe("image build", () => {
  it("npm run image is the documented build and runs scripts/build-image.sh", () => {
    const pkg = JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { scripts: Record<string, string>; version: string };
    expect(pkg.scripts.image).toBe("bash scripts/build-image.sh");
    expect(dockerfile).toMatch(/npm run -s image/);
  });

  it("passes the checkout's commit, the package version and a UTC build time, and tags the version", () => {
    const head = execFileSync("git", ["rev-parse", "HEAD"], { cwd: root, encoding: "utf8" }).trim();
    const version = (JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version;
    const args = buildArgs();
    expect(argValue(args, "RTMANAGER_COMMIT")).toMatch(new RegExp(`^${head}(-dirty)?$`));
    expect(argValue(args, "VERSION")).toBe(version);
    expect(argValue(args, "CREATED")).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(args).toContain(`galaxy/rtmanager:${version}`);
    expect(args.slice(0, 2)).toEqual(["build", "-f"]);
    expect(buildArgs({ IMAGE: "registry.example.com/rtm", TAG: "t1" })).toContain("registry.example.com/rtm:t1");
  });

  it("every build argument the script passes is declared, and the commit reaches the label and the environment", () => {
    const args = buildArgs();
    const passed = args.filter((_, i) => args[i - 1] === "--build-arg").map((a) => a.split("=")[0]!);
    for (const name of passed) expect(dockerfile, name).toMatch(new RegExp(`^ARG ${name}=`, "m"));
    expect(dockerfile).toMatch(/org\.opencontainers\.image\.revision="\$\{RTMANAGER_COMMIT\}"/);
    expect(dockerfile).toMatch(/org\.opencontainers\.image\.version="\$\{VERSION\}"/);
    expect(dockerfile).toMatch(/org\.opencontainers\.image\.created="\$\{CREATED\}"/);
    expect(dockerfile).toMatch(/org\.opencontainers\.image\.source=/);
    expect(dockerfile).toMatch(/RTMANAGER_COMMIT=\$\{RTMANAGER_COMMIT\}/);
  });

  it("CHANGELOG.md has this release's changes and an entry for the current version", () => {
    const version = (JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }).version;
    const changelog = readFileSync(path.join(root, "CHANGELOG.md"), "utf8");
    // This release's changes go under Unreleased until the version is bumped; the current version has its own entry.
    expect(changelog).toMatch(/^## \[Unreleased\]\n\n\S/m);
    expect(changelog).toContain(`## [${version}]`);
  });
});
