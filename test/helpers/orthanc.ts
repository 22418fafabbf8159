// A throwaway Orthanc (Debian's `orthanc` with `orthanc-dicomweb`) for the
// PACS tests: its own storage folder and generated JSON config under a temp
// folder, HTTP on a free port (Orthanc 1.10 has no bind-address option: it
// listens on every interface, refuses remote clients (RemoteAccessAllowed
// false), and the tests only ever talk to 127.0.0.1), the DICOM server off,
// basic auth on. Readiness is polled (no fixed sleeps); a port taken between
// choosing and binding is retried with another. stop() kills it and removes
// the folder, whatever state it is in.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

export const ORTHANC_BIN = "/usr/sbin/Orthanc";
export const DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";
const HOST = "127.0.0.1";

export interface Orthanc {
  /** http://127.0.0.1:PORT */
  url: string;
  /** The DICOMweb root: url + /dicom-web */
  dicomweb: string;
  user: string;
  password: string;
  /** fetch against Orthanc's REST API with the credentials. */
  rest(path: string, init?: RequestInit): Promise<Response>;
  stop(): Promise<void>;
}

/** Whether this machine can run the PACS tests (scripts/setup.sh installs both packages). */
export function orthancAvailable(): boolean {
  return existsSync(ORTHANC_BIN) && existsSync(DICOMWEB_PLUGIN);
}

/** A port that was free a moment ago on 127.0.0.1. */
async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once("error", reject);
    srv.listen(0, HOST, () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

async function exited(child: ChildProcess, ms: number): Promise<boolean> {
  if (child.exitCode !== null || child.signalCode !== null) return true;
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

async function kill(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  if (!(await exited(child, 10_000))) {
    child.kill("SIGKILL");
    await exited(child, 5_000);
  }
}

/** Polls GET /system until Orthanc answers 200, it exits, or `timeoutMs` passes. */
async function waitReady(url: string, auth: string, child: ChildProcess, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) return false;
    try {
      const r = await fetch(`${url}/system`, { headers: { Authorization: auth }, signal: AbortSignal.timeout(2000) });
      if (r.ok) return true;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}

function config(dir: string, port: number, dicomPort: number, user: string, password: string): string {
  return JSON.stringify({
    Name: "segvol-test",
    StorageDirectory: join(dir, "storage"),
    IndexDirectory: join(dir, "storage"),
    HttpPort: port,
    DicomServerEnabled: false,
    DicomPort: dicomPort,
    RemoteAccessAllowed: false,
    AuthenticationEnabled: true,
    RegisteredUsers: { [user]: password },
    Plugins: [DICOMWEB_PLUGIN],
    DicomWeb: { Enable: true, Root: "/dicom-web/" },
    SaveJobs: false,
    HttpCompressionEnabled: false,
    ConcurrentJobs: 1,
    HttpThreadsCount: 8,
  });
}

/** Starts Orthanc in a fresh temp folder; retries with new ports if it does not come up. */
export async function startOrthanc(opts: { timeoutMs?: number; attempts?: number } = {}): Promise<Orthanc> {
  const dir = mkdtempSync(join(tmpdir(), "segvol-orthanc-"));
  const user = "segvol", password = `pw-${Math.random().toString(36).slice(2)}`;
  const auth = `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;
  const errors: string[] = [];
  for (let attempt = 0; attempt < (opts.attempts ?? 3); attempt++) {
    const port = await freePort();
    const dicomPort = await freePort();
    const run = join(dir, `run${attempt}`);
    mkdirSync(join(run, "storage"), { recursive: true });
    writeFileSync(join(run, "orthanc.json"), config(run, port, dicomPort, user, password));
    const log = openSync(join(run, "orthanc.log"), "w");
    const child = spawn(ORTHANC_BIN, [join(run, "orthanc.json")], { cwd: run, stdio: ["ignore", log, log] });
    closeSync(log);
    const url = `http://${HOST}:${port}`;
    if (await waitReady(url, auth, child, opts.timeoutMs ?? 30_000)) {
      return {
        url,
        dicomweb: `${url}/dicom-web`,
        user,
        password,
        rest: (path, init = {}) => fetch(`${url}${path}`, { ...init, headers: { Authorization: auth, ...(init.headers ?? {}) } }),
        stop: async () => {
          await kill(child);
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }
    await kill(child);
    errors.push(`attempt ${attempt + 1} (port ${port}): ${readFileSync(join(run, "orthanc.log"), "utf8").slice(-1500)}`);
  }
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`Orthanc did not start:\n${errors.join("\n")}`);
}
