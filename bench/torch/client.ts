/**
 * The bench's link to PyTorch: finds a Python that imports torch, starts bench/torch/inrun_torch.py
 * once per thread count and talks to it in JSON lines (one request, one reply). PyTorch is never a
 * dependency of inrun: without it the bench prints one line and runs inrun alone.
 *
 * Python: $INRUN_BENCH_PYTHON if set, else the first of `python3`, `/usr/bin/python3` that
 * imports torch (a pyenv or virtualenv `python3` on PATH often lacks Debian's python3-torch).
 */
import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { encodeSafetensors, type NamedTensor } from '../../src/io/safetensors.js';

const SCRIPT = join(import.meta.dirname ?? 'bench/torch', 'inrun_torch.py');

export interface TorchFound {
  python: string;
  version: string;
}

/** The Python to use and its torch version, or why there is none. */
export function findTorch(): TorchFound | { reason: string } {
  const env = process.env.INRUN_BENCH_PYTHON?.trim();
  const candidates = env ? [env] : ['python3', '/usr/bin/python3'];
  const tried: string[] = [];
  for (const python of candidates) {
    const r = spawnSync(python, ['-c', 'import torch; print(torch.__version__)'], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    if (r.status === 0) return { python, version: r.stdout.trim() };
    tried.push(
      `${python}: ${r.error ? r.error.message : (r.stderr.trim().split('\n').at(-1) ?? `exit ${r.status}`)}`,
    );
  }
  return { reason: tried.join('; ') };
}

/** The child's environment for a thread count: OpenMP and OpenBLAS both get it. */
export function torchEnvironment(threads: number): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    OMP_NUM_THREADS: String(threads),
    // PyTorch's set_num_threads sets OpenMP only; its matrix products run in OpenBLAS here.
    OPENBLAS_NUM_THREADS: String(threads),
    MKL_NUM_THREADS: String(threads),
  };
  // libgomp's default is to spin between parallel regions, which on a 2-core machine steals the
  // core the other thread (or the other process) needs and makes timings erratic.
  if (threads > 1) env.OMP_WAIT_POLICY = 'PASSIVE';
  return env;
}

// biome-ignore lint/suspicious/noExplicitAny: JSON replies
type Reply = Record<string, any>;

/**
 * How PyTorch picks each layer's ghost route (inrun_torch.py choose_pairwise): by cost ('cost': the
 * vector route charged the validation gradient, as inrun with checkPairwiseLayers false; 'inrun':
 * inrun's ghostCost alone, as with its default check; 'ghostsuite': the released code's rule), or
 * one route for every layer that has both.
 */
export type TorchRouteRule = 'cost' | 'inrun' | 'ghostsuite' | 'pairwise' | 'vector';

/** One PyTorch process at a fixed thread count. */
export class TorchPeer {
  private readonly pending: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private stderr = '';
  private exited: string | null = null;
  private readonly files: string[] = [];

  private constructor(
    private readonly child: ChildProcessWithoutNullStreams,
    readonly threads: number,
  ) {
    createInterface({ input: child.stdout }).on('line', (line) => {
      const waiter = this.pending.shift();
      if (!waiter) return;
      let reply: Reply;
      try {
        reply = JSON.parse(line);
      } catch {
        waiter.reject(new Error(`PyTorch bench: not JSON: ${line.slice(0, 200)}`));
        return;
      }
      if (typeof reply.error === 'string')
        waiter.reject(new Error(`PyTorch bench: ${reply.error}\n${reply.trace ?? ''}`));
      else waiter.resolve(reply);
    });
    child.stderr.on('data', (chunk) => {
      this.stderr = (this.stderr + String(chunk)).slice(-4000);
    });
    child.on('exit', (code, signal) => {
      this.exited = `exited (${signal ?? code})${this.stderr ? `: ${this.stderr.trim()}` : ''}`;
      for (const w of this.pending.splice(0)) w.reject(new Error(`PyTorch bench process ${this.exited}`));
    });
  }

  /** Starts the script and waits for its "ready" line. */
  static async start(python: string, threads: number): Promise<{ peer: TorchPeer; ready: Reply }> {
    const child = spawn(python, [SCRIPT, '--threads', String(threads)], {
      env: torchEnvironment(threads),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const peer = new TorchPeer(child, threads);
    const ready = await new Promise<Reply>((resolve, reject) => peer.pending.push({ resolve, reject }));
    return { peer, ready };
  }

  request(message: Reply): Promise<Reply> {
    if (this.exited) return Promise.reject(new Error(`PyTorch bench process ${this.exited}`));
    return new Promise((resolve, reject) => {
      this.pending.push({ resolve, reject });
      this.child.stdin.write(`${JSON.stringify(message)}\n`);
    });
  }

  /**
   * Hands the workload's weights and data over in a temporary safetensors file (removed by
   * close()). Tensor names: "w.<inrun slot name>", "train.x", "train.y", "val.x", "val.y".
   */
  async setup(id: string, spec: Reply, tensors: NamedTensor[]): Promise<void> {
    const file = join(os.tmpdir(), `inrun-bench-${process.pid}-${this.threads}-${id}.safetensors`);
    writeFileSync(file, encodeSafetensors(tensors));
    this.files.push(file);
    await this.request({ cmd: 'setup', id, file, spec });
  }

  /** Per-step wall times (ms) of `steps` steps of one configuration. */
  async time(id: string, config: string, steps: number): Promise<number[]> {
    const r = await this.request({ cmd: 'time', id, config, steps });
    return r.ms as number[];
  }

  async values(
    id: string,
    request: {
      order: 1 | 2;
      optimizer: 'sgd' | 'adamw';
      lr: number;
      validation: number;
      /** Overrides of the setup's AdamW options for this request. */
      adamw?: Record<string, number>;
      /** PyTorch's route rule for this request (inrun_torch.py choose_pairwise); default the setup's. */
      rule?: TorchRouteRule;
    },
  ): Promise<{ values: number[]; routes: Record<string, string> }> {
    const r = await this.request({ cmd: 'values', id, ...request });
    return { values: r.values as number[], routes: r.routes as Record<string, string> };
  }

  async close(): Promise<void> {
    if (!this.exited) {
      try {
        await this.request({ cmd: 'quit' });
      } catch {
        // already gone
      }
      this.child.stdin.end();
    }
    for (const f of this.files) rmSync(f, { force: true });
  }
}

/** The PyTorch processes of one benchmark, one per thread count. */
export interface TorchSide {
  python: string;
  version: string;
  peers: Map<number, TorchPeer>;
}

export async function startTorch(found: TorchFound, threads: number[]): Promise<TorchSide> {
  const peers = new Map<number, TorchPeer>();
  for (const t of threads) {
    const { peer, ready } = await TorchPeer.start(found.python, t);
    peers.set(t, peer);
    if (ready.threads !== t) {
      for (const p of peers.values()) await p.close();
      throw new Error(`PyTorch started with ${ready.threads} threads, not ${t}`);
    }
  }
  return { python: found.python, version: found.version, peers };
}

export async function stopTorch(side: TorchSide): Promise<void> {
  for (const peer of side.peers.values()) await peer.close();
}
