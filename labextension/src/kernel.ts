// The front end's half of nbmlops.magics.FrontEndLink: tell the kernel which notebook it runs and,
// just before a %%track cell is sent, the notebook as it is in memory (unsaved edits included).
import { NotebookPanel } from '@jupyterlab/notebook';
import { Kernel, KernelMessage } from '@jupyterlab/services';
import { JSONObject } from '@lumino/coreutils';
import { serverVersion } from './api';

const TARGET = 'nbmlops';

/** Is this source a cell nbmlops tracks? (The same rule as the kernel's: a first line
 * starting with %%track.) */
export function isTracked(source: string): boolean {
  return source.trimStart().startsWith('%%track');
}

/** Does this source load nbmlops into the kernel? */
export function loadsNbmlops(source: string): boolean {
  return /^\s*%(re)?load_ext\s+nbmlops\b/m.test(source);
}

/** One notebook's link to its kernel. */
export class KernelLink {
  private comm: Kernel.IComm | null = null;
  private kernel: Kernel.IKernelConnection | null = null;
  private changedSinceSnapshot = true;
  // A cell that loads nbmlops was sent to this kernel process: the comm target exists once
  // the kernel has run it, which is before any cell sent after it.
  private loadSent = false;
  private disposed = false;

  constructor(private readonly panel: NotebookPanel) {
    const context = panel.sessionContext;
    context.kernelChanged.connect(() => void this.attach(), this);
    context.connectionStatusChanged.connect((_, status) => {
      if (status === 'connected') {
        void this.attach();
      }
    }, this);
    context.statusChanged.connect((_, status) => {
      if (status === 'restarting' || status === 'autorestarting') {
        this.loadSent = false; // a new kernel process: nbmlops is not loaded there yet
      }
    }, this);
    panel.context.pathChanged.connect(() => void this.sendPath(), this);
    panel.context.saveState.connect((_, state) => {
      if (state === 'completed') {
        this.changedSinceSnapshot = true; // the dirty flag changed
      }
    }, this);
    panel.context.model.contentChanged.connect(() => (this.changedSinceSnapshot = true), this);
    void context.ready.then(() => this.attach());
    // Known before the first snapshot, which Run All can send before any path message.
    serverVersion().then(
      version => (this.rootDir = version.root_dir),
      () => undefined // no server extension: the kernel keeps the path Jupyter gave it
    );
  }

  get connected(): boolean {
    return this.comm !== null && !this.comm.isDisposed;
  }

  dispose(): void {
    this.disposed = true;
    this.comm = null;
  }

  /** Register the comm target on the notebook's kernel, and open a link if nbmlops is already
   * loaded there (a reloaded page finds the kernel's announcement with comm_info). */
  private async attach(): Promise<void> {
    const kernel = this.panel.sessionContext.session?.kernel ?? null;
    if (this.disposed || !kernel || kernel === this.kernel) {
      return;
    }
    this.kernel = kernel;
    this.comm = null;
    this.changedSinceSnapshot = true;
    this.loadSent = false;
    kernel.registerCommTarget(TARGET, (comm, message) => this.adopt(comm, message));
    try {
      const reply = await kernel.requestCommInfo({ target_name: TARGET });
      const comms = (reply.content as KernelMessage.ICommInfoReply).comms ?? {};
      if (Object.keys(comms).length > 0 && !this.connected && this.kernel === kernel) {
        const comm = kernel.createComm(TARGET);
        comm.open({ kind: 'hello' });
        this.use(comm);
      }
    } catch {
      // A kernel that does not answer comm_info (not IPython): no link, nothing to send.
    }
  }

  private adopt(comm: Kernel.IComm, _message: KernelMessage.ICommOpenMsg): void {
    if (this.panel.sessionContext.session?.kernel !== this.kernel) {
      return;
    }
    this.use(comm);
  }

  private use(comm: Kernel.IComm): void {
    this.comm = comm;
    this.changedSinceSnapshot = true;
    comm.onClose = () => {
      if (this.comm === comm) {
        this.comm = null;
      }
    };
    void this.sendPath();
  }

  private async sendPath(): Promise<void> {
    const comm = this.comm;
    if (!comm || comm.isDisposed) {
      return;
    }
    try {
      this.rootDir = (await serverVersion()).root_dir;
    } catch {
      return; // no server extension: the kernel keeps the path Jupyter gave it
    }
    comm.send({ kind: 'path', path: this.knownPath });
    this.changedSinceSnapshot = true;
  }

  /** Called synchronously when a cell is scheduled, before its execute request is sent: a
   * message sent now reaches the kernel first (both travel on the shell channel). */
  beforeExecute(source: string): void {
    if (loadsNbmlops(source)) {
      this.loadSent = true;
    }
    if (!isTracked(source)) {
      return;
    }
    if (!this.connected && this.loadSent) {
      this.openAhead();
    }
    const comm = this.comm;
    if (!comm || comm.isDisposed || !this.changedSinceSnapshot) {
      return;
    }
    const model = this.panel.context.model;
    if (!model) {
      return;
    }
    // Sources, ids and metadata only: outputs (images, tables) would make every message large
    // and say nothing about what was asked to run.
    const cells = [];
    for (const cell of model.cells) {
      const entry: JSONObject = {
        id: cell.id,
        cell_type: cell.type,
        source: cell.sharedModel.getSource(),
        metadata: cell.metadata as JSONObject
      };
      if (cell.type === 'code') {
        entry.outputs = [];
        entry.execution_count = null;
      }
      cells.push(entry);
    }
    const notebook = {
      cells,
      metadata: model.metadata as JSONObject,
      nbformat: model.nbformat,
      nbformat_minor: model.nbformatMinor
    };
    const path = this.knownPath;
    comm.send({ kind: 'snapshot', path, notebook, dirty: model.dirty });
    this.changedSinceSnapshot = false;
  }

  /** Open the link before the kernel has run the cell that loads nbmlops (Run All on a fresh
   * kernel sends every cell at once). The kernel handles shell messages in order: it runs the
   * loading cell, which registers the comm target, then this comm_open, then the snapshot,
   * then the tracked cell. The kernel opens its own comm too when nbmlops loads; either
   * serves. */
  private openAhead(): void {
    const kernel = this.kernel;
    if (!kernel || kernel.isDisposed) {
      return;
    }
    const comm = kernel.createComm(TARGET);
    comm.open({ kind: 'hello' });
    this.use(comm);
  }

  /** The notebook's absolute path as the kernel records it, once the handshake gave the
   * server's root (null before: the kernel then keeps the path Jupyter gave it). */
  private get knownPath(): string | null {
    if (this.rootDir === null) {
      return null;
    }
    return this.rootDir.replace(/[\\/]+$/, '') + '/' + this.panel.context.path;
  }

  private rootDir: string | null = null;
}
