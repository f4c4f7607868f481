// The REST API of the nbmlops server extension (src/nbmlops/jupyter), with the version handshake.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

/** The REST API version this front end was built for (nbmlops.jupyter.payloads.API_VERSION). */
export const API_VERSION = 1;

export interface IVersion {
  version: string;
  api: number;
  store: string;
  store_exists: boolean;
  root_dir: string;
}

export interface IRunRow {
  run_id: string;
  name: string | null;
  experiment: string | null;
  status: string;
  start_time: string | null;
  end_time: string | null;
  duration_s: number | null;
  notebook: string | null;
  cell_id: string | null;
  [column: string]: unknown;
}

export interface IRunsPage {
  runs: IRunRow[];
  total: number;
}

export interface IRunDetail {
  run_id: string;
  info: IRunRow & { error_type: string | null; error_message: string | null };
  params: Record<string, unknown>;
  metrics: Record<string, number | null>;
  tags: Record<string, string>;
  datasets: Array<{
    name: string;
    role: string;
    dataset_id: string;
    n_rows?: number | null;
    n_columns?: number | null;
    [key: string]: unknown;
  }>;
  /** The named dataset versions the run used: loaded, saved, or read (an input with their content). */
  dataset_versions: Array<{
    ref: string;
    name: string;
    version: number;
    how: string;
    variable: string | null;
  }>;
  artifacts: Array<{ name: string; kind: string; size: number; [key: string]: unknown }>;
  cell_source: string | null;
}

export interface ICompare {
  runs: Array<{ run_id: string; name: string | null; status: string }>;
  params: Record<string, Record<string, unknown>>;
  metrics: Record<
    string,
    { values: Record<string, number | null>; best: string | null; lower_is_better: boolean }
  >;
  datasets: Record<string, { values: Record<string, unknown>; same: boolean }>;
  source_diffs: Array<{ a: string; b: string; lines: string[] }>;
}

export interface ICellBadge {
  run_id: string;
  name: string | null;
  status: string;
  duration_s: number | null;
  headline: { key: string; value: number | null } | null;
  version: number | null;
  versions: number;
  executions: number;
}

export interface ILatestCells {
  notebook: string;
  cells: Record<string, ICellBadge>;
}

export interface ICellVersion {
  version: number;
  source_hash: string;
  source: string;
  first_run: string | null;
  last_run: string | null;
  executions: number;
  errors: number;
  runs: string[];
}

export interface ICellHistory {
  cell_id: string;
  notebook: string | null;
  versions: ICellVersion[];
}

export interface IDiff {
  a: string;
  b: string;
  same: boolean;
  lines: string[];
}

export interface IModelRow {
  name: string;
  latest_version: number | null;
  aliases: unknown;
  [column: string]: unknown;
}

export interface IModels {
  models: IModelRow[];
}

/** A model version's latest review (`nbmlops review model`); paths relative to the server root. */
export interface IModelReview {
  review_id: number;
  created_at: string | null;
  against: string | null;
  headline: string | null;
  lines: string[];
  actor: string | null;
  /** Where review.ipynb and review.html were written (absolute). */
  folder: string | null;
  /** null when the files are outside the server root (JupyterLab cannot open them). */
  notebook_path: string | null;
  html_path: string | null;
}

export interface IApproval {
  approval_id: number;
  by: string;
  comment: string | null;
  review_id: number | null;
  at: string | null;
  self_approval: boolean;
}

export interface IModelReviews {
  versions: Array<{
    name: string;
    version: number;
    review: IModelReview | null;
    approvals: IApproval[];
  }>;
}

/** An error the user should read: the server's message, or what is wrong with the setup. */
export class NbmlopsError extends Error {
  constructor(
    message: string,
    readonly status: number = 0
  ) {
    super(message);
  }
}

const NOT_ENABLED =
  'The nbmlops server extension is not enabled in this Jupyter server, so the sidebar and ' +
  'badges have nothing to read. Install nbmlops in the environment that runs Jupyter ' +
  '(pip install nbmlops), or enable it with `jupyter server extension enable nbmlops.jupyter`, ' +
  'then restart Jupyter.';

/** GET `<base_url>/nbmlops/api/<endpoint>` with the API version; the parsed JSON body. */
export async function request<T>(
  endpoint: string,
  params: Record<string, string | number | undefined> = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const query = new URLSearchParams({ api: String(API_VERSION) });
  for (const [key, value] of Object.entries(params)) {
    if (value !== undefined && value !== '') {
      query.set(key, String(value));
    }
  }
  const url = URLExt.join(settings.baseUrl, 'nbmlops', 'api', endpoint) + '?' + query.toString();
  let response: Response;
  try {
    response = await ServerConnection.makeRequest(url, {}, settings);
  } catch (error) {
    throw new NbmlopsError(`The Jupyter server cannot be reached: ${error}`);
  }
  let body: any = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    if (response.status === 404 && endpoint === 'version') {
      throw new NbmlopsError(NOT_ENABLED, 404);
    }
    const message = body?.message ?? `${response.status} ${response.statusText}`;
    throw new NbmlopsError(String(message), response.status);
  }
  return body as T;
}

let handshake: Promise<IVersion> | null = null;

/** The server's version, asked once: rejects with a message a user can act on when the server
 * extension is missing or serves another API version. */
export function serverVersion(): Promise<IVersion> {
  if (!handshake) {
    handshake = request<IVersion>('version').catch(error => {
      handshake = null; // ask again next time: the server may have been fixed
      throw error;
    });
  }
  return handshake;
}
