// A DICOMweb client over fetch: QIDO-RS to list a study's series, WADO-RS
// to retrieve one (multipart/related of Part 10 instances), STOW-RS to store
// a DICOM-SEG. Credentials: HTTP basic or a bearer token. Plain http is only
// for the local machine unless `insecure`: credentials and patient data
// would cross the network in the clear. Redirects are refused rather than
// followed (they could carry the Authorization header elsewhere), and a
// response is read no further than maxBytes.
import { DicomError, describeThrown } from "./errors.js";
import { boundaryOf, buildMultipart, MultipartSplitter } from "./multipart.js";
import { readSeriesFrom, type DicomSeries, type ReadDicomOptions } from "./series.js";
import { memorySources } from "./sources.js";

export interface DicomWebOptions {
  /** HTTP basic credentials. */
  user?: string;
  password?: string;
  /** Bearer token (OAuth); not with user/password. */
  token?: string;
  /** Allow plain http to a host other than this machine. */
  insecure?: boolean;
  /** Per request (default 10 minutes). */
  timeoutMs?: number;
  /** The largest response read (default 4 GiB). */
  maxBytes?: number;
}

/** A series in a study, as QIDO-RS lists it. */
export interface DicomWebSeries {
  seriesInstanceUid: string;
  modality: string;
  description: string;
  instances: number | undefined;
}

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** The service URL, checked: http(s) only, no credentials in it, plain http only to this machine unless `insecure`. */
export function checkDicomWebUrl(url: string, insecure = false): URL {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new DicomError(`--dicomweb ${url}: not a URL (e.g. http://localhost:8042/dicom-web)`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") throw new DicomError(`--dicomweb ${url}: only http and https URLs`);
  if (u.username || u.password) throw new DicomError(`--dicomweb: put credentials in --user/--password or --token, not in the URL`);
  const local = LOCAL_HOSTS.has(u.hostname) || /^127\.\d+\.\d+\.\d+$/.test(u.hostname);
  if (u.protocol === "http:" && !local && !insecure) {
    throw new DicomError(`--dicomweb ${url}: plain http to ${u.hostname} would send patient data and credentials unencrypted; use https, or --insecure to allow it`);
  }
  if (!u.pathname.endsWith("/")) u.pathname += "/";
  return u;
}

const tag = (ds: Record<string, { Value?: unknown[] }>, t: string): string => String(ds[t]?.Value?.[0] ?? "");

export class DicomWebClient {
  readonly base: URL;
  private readonly auth: string | undefined;
  private readonly timeoutMs: number;
  private readonly maxBytes: number;

  constructor(url: string, opts: DicomWebOptions = {}) {
    this.base = checkDicomWebUrl(url, opts.insecure);
    if (opts.token !== undefined && (opts.user !== undefined || opts.password !== undefined)) {
      throw new DicomError("give either --user/--password or --token, not both");
    }
    if (opts.password !== undefined && opts.user === undefined) throw new DicomError("--password needs --user");
    if (opts.token !== undefined) this.auth = `Bearer ${opts.token}`;
    else if (opts.user !== undefined) this.auth = `Basic ${Buffer.from(`${opts.user}:${opts.password ?? ""}`).toString("base64")}`;
    this.timeoutMs = opts.timeoutMs ?? 600_000;
    this.maxBytes = opts.maxBytes ?? 4 * 2 ** 30;
  }

  private url(path: string): string {
    return new URL(path, this.base).toString();
  }

  /** One request; refuses redirects and non-2xx answers, naming the URL and quoting the server's message. */
  private async request(method: string, path: string, headers: Record<string, string>, body?: Uint8Array): Promise<Response> {
    const url = this.url(path);
    const h: Record<string, string> = { ...headers };
    if (this.auth) h.Authorization = this.auth;
    let res: Response;
    try {
      res = await fetch(url, { method, headers: h, body, redirect: "manual", signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      throw new DicomError(`${method} failed: ${describeThrown((e as { cause?: unknown }).cause ?? e)}`, url);
    }
    if (res.status >= 300 && res.status < 400) {
      throw new DicomError(`${method}: the server redirects to ${res.headers.get("location") ?? "?"}; give that URL (redirects are not followed, to keep credentials where they were sent)`, url);
    }
    if (!res.ok) {
      const text = (await res.text().catch(() => "")).slice(0, 200);
      const hint = res.status === 401 || res.status === 403 ? " (check --user/--password or --token)" : "";
      throw new DicomError(`${method}: HTTP ${res.status} ${res.statusText}${hint}${text ? `: ${text}` : ""}`, url);
    }
    return res;
  }

  /** The response body's chunks as they arrive, refusing more than maxBytes. */
  private async *chunks(res: Response, url: string): AsyncGenerator<Uint8Array> {
    const declared = Number(res.headers.get("content-length") ?? NaN);
    if (declared > this.maxBytes) throw new DicomError(`response of ${declared} bytes is more than the ${this.maxBytes} allowed`, url);
    let size = 0;
    if (!res.body) return;
    for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
      size += chunk.byteLength;
      if (size > this.maxBytes) throw new DicomError(`response of more than the ${this.maxBytes} bytes allowed`, url);
      yield chunk;
    }
  }

  /** The whole response body (a QIDO-RS or STOW-RS answer: small), refusing more than maxBytes. */
  private async body(res: Response, url: string): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    for await (const chunk of this.chunks(res, url)) chunks.push(chunk);
    return chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
  }

  /** QIDO-RS: the series of a study. */
  async searchSeries(study: string): Promise<DicomWebSeries[]> {
    const path = `studies/${encodeURIComponent(study)}/series`;
    const res = await this.request("GET", path, { Accept: "application/dicom+json" });
    const text = new TextDecoder().decode(await this.body(res, this.url(path)));
    let list: Record<string, { Value?: unknown[] }>[];
    try {
      list = text.trim() === "" ? [] : JSON.parse(text);
    } catch {
      throw new DicomError(`QIDO-RS answer is not JSON: ${text.slice(0, 200)}`, this.url(path));
    }
    return list.map((ds) => ({
      seriesInstanceUid: tag(ds, "0020000E"),
      modality: tag(ds, "00080060"),
      description: tag(ds, "0008103E"),
      instances: ds["00201209"]?.Value ? Number(ds["00201209"].Value[0]) : undefined,
    }));
  }

  /** WADO-RS: every instance of a series, as Part 10 bytes, in their original transfer syntax. */
  async retrieveSeries(study: string, series: string): Promise<Uint8Array[]> {
    const path = `studies/${encodeURIComponent(study)}/series/${encodeURIComponent(series)}`;
    const url = this.url(path);
    const res = await this.request("GET", path, { Accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' });
    // Split as it arrives: each instance's bytes are copied once, and the
    // response is never held whole beside its parts.
    const split = new MultipartSplitter(boundaryOf(res.headers.get("content-type") ?? "", url), url);
    for await (const chunk of this.chunks(res, url)) split.push(chunk);
    const parts = split.end();
    if (parts.length === 0) throw new DicomError("the series has no instances", url);
    return parts.map((p, n) => {
      const type = p.headers["content-type"] ?? "application/dicom";
      if (!/^application\/dicom\b/i.test(type)) throw new DicomError(`part ${n + 1} is ${type}, not application/dicom`, url);
      return p.body;
    });
  }

  /** STOW-RS: stores instances in `study`; refuses an answer that reports a failure or leaves one out. */
  async store(study: string, instances: readonly { bytes: Uint8Array; sopInstanceUid: string }[]): Promise<void> {
    const path = `studies/${encodeURIComponent(study)}`;
    const url = this.url(path);
    const { body, contentType } = buildMultipart(instances.map((i) => i.bytes));
    const res = await this.request("POST", path, { "Content-Type": contentType, Accept: "application/dicom+json" }, body);
    const text = new TextDecoder().decode(await this.body(res, url));
    let answer: Record<string, { Value?: Record<string, { Value?: unknown[] }>[] }> = {};
    try {
      if (text.trim()) answer = JSON.parse(text);
    } catch {
      throw new DicomError(`STOW-RS answer is not JSON: ${text.slice(0, 200)}`, url);
    }
    const failed = answer["00081198"]?.Value ?? [];
    if (failed.length > 0) throw new DicomError(`STOW-RS: the server refused ${failed.length} instance(s) (failure reason ${tag(failed[0]!, "00081197") || "?"})`, url);
    const stored = new Set((answer["00081199"]?.Value ?? []).map((r) => tag(r, "00081155")));
    for (const i of instances) if (!stored.has(i.sopInstanceUid)) throw new DicomError(`STOW-RS: the answer does not list instance ${i.sopInstanceUid} as stored`, url);
  }
}

/** Modalities of series that hold no images to segment (segmentations, reports, presentation states, …). */
const NON_IMAGE_MODALITIES = new Set(["SEG", "SR", "PR", "KO", "RTSTRUCT", "RTPLAN", "RTDOSE", "DOC", "REG", "OT"]);

/**
 * Retrieves a series over WADO-RS and reads it as readDicomSeries reads a
 * folder (the same checks and refusals). Without `opts.seriesUid` the study
 * must hold one image series (series of SEG, SR, PR, … are not counted);
 * otherwise they are listed.
 */
export async function readDicomWebSeries(client: DicomWebClient, study: string, opts: ReadDicomOptions = {}): Promise<DicomSeries> {
  let series = opts.seriesUid;
  if (series === undefined) {
    const all = await client.searchSeries(study);
    const images = all.filter((s) => !NON_IMAGE_MODALITIES.has(s.modality));
    if (images.length !== 1) {
      const list = all.map((s) => `  ${s.seriesInstanceUid}  ${s.modality || "?"}  ${s.instances ?? "?"} instance(s)${s.description ? `  "${s.description}"` : ""}`);
      throw new DicomError(`study ${study} holds ${images.length} image series; choose one with --series UID:\n${list.join("\n") || "  (none)"}`, client.base.toString());
    }
    series = images[0]!.seriesInstanceUid;
  }
  const parts = await client.retrieveSeries(study, series);
  return readSeriesFrom(memorySources(parts, `series ${series}`), `study ${study}`, { ...opts, seriesUid: series });
}
