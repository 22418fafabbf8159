// A vitest setup file: after each test, one turn of the event loop.
//
// A worker reports to the runner over an RPC whose calls time out after a
// fixed 60 s, reading the replies in the event loop's poll phase. Between
// the tests of a file the worker awaits only microtasks, so a file of
// synchronous tests (spawnSync of the CLI, sync parsing) never reaches that
// phase; once such a file has run 60 s, the expired timeout fires before the
// reply that was already waiting is read, and the run fails with "Timeout
// calling onTaskUpdate" although every test passed. On a loaded 2-core
// machine test/cli/segment.test.ts (ten spawnSync tests) took 62 s and did
// exactly that. setImmediate runs after the poll phase, so each test ends
// with the replies read: only a single synchronous test of 60 s could still
// starve the RPC.
import { afterEach } from "vitest";

afterEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
