// Dawn prints two notices whenever it lists the GPU adapters:
//   Warning: maxDynamicUniformBuffersPerPipelineLayout artificially reduced from 1000000 to 16 to fit dynamic offset allocation limit.
//   Warning: maxDynamicStorageBuffersPerPipelineLayout artificially reduced from …
// They come from native code (dawn::WarningLog, an fprintf to file
// descriptor 2: no callback, no toggle), concern limits this library never
// uses, and only alarm users. JavaScript cannot filter what native code
// writes to fd 2, so the CLI runs its command in a child process whose
// stderr it relays without exactly those two lines; every other byte passes
// unchanged and at once. When stderr is a terminal, the child also gets it
// as fd 3 (SEGVOL_TTY_FD), so that its progress bar still draws there.
import { spawn } from "node:child_process";
import { isatty, WriteStream } from "node:tty";

const CHILD_ENV = "SEGVOL_STDERR_RELAYED";
const TTY_FD_ENV = "SEGVOL_TTY_FD";

/** One of Dawn's two limit notices (a whole line). */
export const DAWN_LIMIT_NOTICE = /^Warning: maxDynamic(?:Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?$/;
const NOTICE_START = "Warning: maxDynamic";

/**
 * Drops Dawn's limit notices from a text stream given in chunks. Text is
 * held back only while the current line could still become a notice.
 */
export class NoticeFilter {
  private pending = "";

  /** The text to pass on for this chunk. */
  push(chunk: string): string {
    const lines = (this.pending + chunk).split("\n");
    const last = lines.pop()!;
    let out = "";
    for (const line of lines) if (!DAWN_LIMIT_NOTICE.test(line)) out += line + "\n";
    const couldBeNotice = last.startsWith(NOTICE_START) || (last !== "" && NOTICE_START.startsWith(last));
    this.pending = couldBeNotice ? last : "";
    return couldBeNotice ? out : out + last;
  }

  /** What is still held back, at the end of the stream. */
  end(): string {
    const rest = this.pending;
    this.pending = "";
    return DAWN_LIMIT_NOTICE.test(rest) ? "" : rest;
  }
}

/** True in the process that runs the command (the child of `relayStderr`). */
export function stderrRelayed(): boolean {
  return process.env[CHILD_ENV] === "1";
}

/**
 * Runs this same command line in a child whose stderr passes through a
 * NoticeFilter, and ends this process as the child ended (exit code or signal).
 */
export function relayStderr(): void {
  const tty = process.stderr.isTTY === true;
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    stdio: ["inherit", "inherit", "pipe", ...(tty ? [2] : [])],
    env: { ...process.env, [CHILD_ENV]: "1", ...(tty ? { [TTY_FD_ENV]: "3" } : {}) },
  });
  const filter = new NoticeFilter();
  child.stderr!.setEncoding("utf8");
  child.stderr!.on("data", (chunk: string) => {
    const out = filter.push(chunk);
    if (out) process.stderr.write(out);
  });
  // Ctrl-C reaches the child too (same process group), which decides what
  // it means (`segvol train` saves a checkpoint first); this process waits.
  const ignore = () => {};
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  process.on("SIGINT", ignore);
  process.on("SIGTERM", forward);
  process.on("SIGHUP", forward);
  child.on("error", (e) => {
    console.error(`segvol: cannot start the command: ${e.message}`);
    process.exitCode = 1;
  });
  child.on("close", (code, signal) => {
    const rest = filter.end();
    if (rest) process.stderr.write(rest);
    process.off("SIGINT", ignore);
    process.off("SIGTERM", forward);
    process.off("SIGHUP", forward);
    if (signal) process.kill(process.pid, signal);
    else process.exitCode = code ?? 1;
  });
}

let progress: NodeJS.WriteStream | null | undefined;

/** The terminal to draw progress bars on (the relayed fd 3, or stderr), or null when there is none. */
export function progressStream(): NodeJS.WriteStream | null {
  if (progress === undefined) {
    const fd = Number(process.env[TTY_FD_ENV]);
    if (stderrRelayed() && Number.isInteger(fd) && isatty(fd)) progress = new WriteStream(fd);
    else progress = process.stderr.isTTY ? process.stderr : null;
  }
  return progress;
}
