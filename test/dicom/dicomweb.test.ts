// The DICOMweb client against a scripted HTTP server on 127.0.0.1: which
// URLs it accepts, the credentials it sends (basic, bearer), multipart
// responses split into instances, truncated or oversized responses,
// redirects refused, and STOW-RS answers that report a failure.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkDicomWebUrl, DicomWebClient } from "../../src/dicom/dicomweb.js";
import { DicomError } from "../../src/dicom/errors.js";
import { buildMultipart, MultipartSplitter, parseMultipart } from "../../src/dicom/multipart.js";

type Handler = (req: IncomingMessage, body: Buffer, res: ServerResponse) => void;
let server: Server;
let base: string;
let handler: Handler = (_q, _b, res) => res.end();
const seen: { auth?: string; url?: string; contentType?: string; body?: Buffer }[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      seen.push({ auth: req.headers.authorization, url: req.url, contentType: req.headers["content-type"], body });
      handler(req, body, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  base = `http://127.0.0.1:${typeof addr === "object" && addr ? addr.port : 0}/dicom-web`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));

const part = (n: number) => new Uint8Array(300 + n).map((_, i) => (i * 31 + n) & 255);

describe("DICOMweb URLs", () => {
  it("allows https anywhere and plain http to this machine only, unless insecure", () => {
    expect(checkDicomWebUrl("https://pacs.example.org/dicom-web").toString()).toBe("https://pacs.example.org/dicom-web/");
    for (const local of ["http://localhost:8042/dicom-web", "http://127.0.0.1:8042/dicom-web", "http://127.3.2.1/x", "http://[::1]:8042/"]) {
      expect(() => checkDicomWebUrl(local), local).not.toThrow();
    }
    expect(() => checkDicomWebUrl("http://pacs.example.org/dicom-web")).toThrow(/plain http to pacs\.example\.org .* use https, or --insecure/);
    expect(() => checkDicomWebUrl("http://10.0.0.5/dicom-web")).toThrow(DicomError);
    expect(checkDicomWebUrl("http://pacs.example.org/dicom-web", true).hostname).toBe("pacs.example.org");
    expect(() => checkDicomWebUrl("ftp://localhost/x")).toThrow(/only http and https/);
    expect(() => checkDicomWebUrl("http://u:p@localhost/x")).toThrow(/not in the URL/);
    expect(() => checkDicomWebUrl("not a url")).toThrow(/not a URL/);
  });

  it("sends basic or bearer credentials, never both", async () => {
    handler = (_q, _b, res) => res.setHeader("Content-Type", "application/dicom+json").end("[]");
    await new DicomWebClient(base, { user: "ann", password: "s3cret" }).searchSeries("1.2");
    expect(seen.at(-1)!.auth).toBe(`Basic ${Buffer.from("ann:s3cret").toString("base64")}`);
    expect(seen.at(-1)!.url).toBe("/dicom-web/studies/1.2/series");
    await new DicomWebClient(base, { token: "tok-123" }).searchSeries("1.2");
    expect(seen.at(-1)!.auth).toBe("Bearer tok-123");
    await new DicomWebClient(base).searchSeries("1.2");
    expect(seen.at(-1)!.auth).toBeUndefined();
    expect(() => new DicomWebClient(base, { user: "a", token: "t" })).toThrow(/either --user\/--password or --token/);
    expect(() => new DicomWebClient(base, { password: "p" })).toThrow(/--password needs --user/);
  });
});

describe("WADO-RS and STOW-RS", () => {
  it("splits a multipart response into its instances (quoted boundary, headers per part)", async () => {
    const parts = [part(1), part(2), part(3)];
    const { body, contentType } = buildMultipart(parts);
    handler = (_q, _b, res) => res.setHeader("Content-Type", contentType.replace(/boundary=(\S+)/, 'boundary="$1"')).end(Buffer.from(body));
    const got = await new DicomWebClient(base).retrieveSeries("1.2", "3.4");
    expect(got.map((p) => Array.from(p))).toEqual(parts.map((p) => Array.from(p)));
    expect(seen.at(-1)!.url).toBe("/dicom-web/studies/1.2/series/3.4");
  });

  it("splits a response as it arrives: any chunking gives the same parts, each in a buffer of its own", async () => {
    const parts = [part(1), new Uint8Array(200_000).map((_, i) => (i * 7) & 255), part(3), new Uint8Array(0)];
    const { body, contentType } = buildMultipart(parts);
    const boundary = /boundary=(\S+)/.exec(contentType)![1]!;
    const want = parts.map((p) => Buffer.from(p).toString("hex"));
    // Every cut within the first delimiter, the first part's end and the closing delimiter, then 1-byte chunks throughout a part's end.
    const firstEnd = Buffer.from(body).indexOf(`\r\n--${boundary}`);
    for (const cut of [1, 10, 20, 60, 90, firstEnd - 1, firstEnd, firstEnd + 1, firstEnd + 5, firstEnd + 40, body.length - 5, body.length - 1]) {
      const split = new MultipartSplitter(boundary, "x");
      split.push(body.subarray(0, cut));
      split.push(body.subarray(cut));
      expect(split.end().map((p) => Buffer.from(p.body).toString("hex")), `cut at ${cut}`).toEqual(want);
    }
    const bytewise = new MultipartSplitter(boundary, "x");
    for (let i = 0; i < firstEnd + 200; i++) bytewise.push(body.subarray(i, i + 1));
    bytewise.push(body.subarray(firstEnd + 200));
    expect(bytewise.end().map((p) => Buffer.from(p.body).toString("hex"))).toEqual(want);

    // Over HTTP in 1000-byte writes: the large instance's bytes sit in a buffer of their own, not in one holding the whole response.
    handler = (_q, _b, res) => {
      res.setHeader("Content-Type", contentType);
      for (let at = 0; at < body.length; at += 1000) res.write(Buffer.from(body.subarray(at, at + 1000)));
      res.end();
    };
    const got = await new DicomWebClient(base).retrieveSeries("1", "2");
    expect(got.map((p) => Buffer.from(p).toString("hex"))).toEqual(want);
    expect(got[1]!.buffer.byteLength).toBe(200_000);
  });

  it("refuses a truncated multipart body, a non-DICOM part, a redirect and an oversized response", async () => {
    const { body, contentType } = buildMultipart([part(1), part(2)]);
    handler = (_q, _b, res) => res.setHeader("Content-Type", contentType).end(Buffer.from(body.subarray(0, body.length - 100)));
    await expect(new DicomWebClient(base).retrieveSeries("1", "2")).rejects.toThrow(/part 2 is not closed by the boundary \(truncated response\?\)/);

    const boundary = "b0";
    handler = (_q, _b, res) => res.setHeader("Content-Type", `multipart/related; boundary=${boundary}`).end(`--b0\r\nContent-Type: text/html\r\n\r\n<html>\r\n--b0--\r\n`);
    await expect(new DicomWebClient(base).retrieveSeries("1", "2")).rejects.toThrow(/part 1 is text\/html, not application\/dicom/);

    handler = (_q, _b, res) => res.writeHead(302, { Location: "http://elsewhere.example/x" }).end();
    await expect(new DicomWebClient(base, { user: "a", password: "b" }).retrieveSeries("1", "2")).rejects.toThrow(/redirects to http:\/\/elsewhere\.example\/x/);

    handler = (_q, _b, res) => res.setHeader("Content-Type", contentType).end(Buffer.from(body));
    await expect(new DicomWebClient(base, { maxBytes: 500 }).retrieveSeries("1", "2")).rejects.toThrow(/response of \d+ bytes is more than the 500 allowed/);
    // Chunked, no Content-Length: counted as it arrives.
    handler = (_q, _b, res) => {
      res.setHeader("Content-Type", contentType);
      res.write(Buffer.from(body.subarray(0, 300)));
      res.end(Buffer.from(body.subarray(300)));
    };
    await expect(new DicomWebClient(base, { maxBytes: 500 }).retrieveSeries("1", "2")).rejects.toThrow(/response of more than the 500 bytes allowed/);

    handler = (_q, _b, res) => res.writeHead(404, "Not Found").end("no such series");
    await expect(new DicomWebClient(base).retrieveSeries("1", "2")).rejects.toThrow(/GET: HTTP 404 Not Found: no such series/);
  });

  it("stores instances as multipart/related and checks the answer", async () => {
    const inst = { bytes: part(7), sopInstanceUid: "2.25.9" };
    const answer = (body: object) => (_q: IncomingMessage, _b: Buffer, res: ServerResponse) => res.setHeader("Content-Type", "application/dicom+json").end(JSON.stringify(body));
    handler = answer({ "00081199": { vr: "SQ", Value: [{ "00081155": { vr: "UI", Value: ["2.25.9"] } }] } });
    await new DicomWebClient(base).store("1.2", [inst]);
    const sent = seen.at(-1)!;
    expect(sent.url).toBe("/dicom-web/studies/1.2");
    const boundary = /boundary=(\S+)/.exec(sent.contentType!)![1]!;
    expect(sent.contentType).toMatch(/^multipart\/related; type="application\/dicom"; boundary=/);
    const parts = parseMultipart(new Uint8Array(sent.body!), boundary, "sent");
    expect(parts.map((p) => [p.headers["content-type"], Array.from(p.body)])).toEqual([["application/dicom", Array.from(inst.bytes)]]);

    handler = answer({ "00081198": { vr: "SQ", Value: [{ "00081197": { vr: "US", Value: [272] } }] } });
    await expect(new DicomWebClient(base).store("1.2", [inst])).rejects.toThrow(/refused 1 instance\(s\) \(failure reason 272\)/);
    handler = answer({});
    await expect(new DicomWebClient(base).store("1.2", [inst])).rejects.toThrow(/does not list instance 2\.25\.9 as stored/);
  });
});
