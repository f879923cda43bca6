// Types of scripts/build-web.mjs, for the tests that build and serve the page.
import type { BuildOptions, BuildResult } from 'esbuild';

/** Where the page is built by default: build/web. */
export const WEB_OUT: string;
/** The Content-Security-Policy the server and _headers send. */
export const CSP_HEADER: string;

export function bundleForBrowser(options: {
  entryPoints: BuildOptions['entryPoints'];
  outdir: string;
  minify?: boolean;
  write?: boolean;
}): Promise<BuildResult<{ metafile: true }>>;

export function buildWeb(options?: {
  outdir?: string;
  minify?: boolean;
}): Promise<{ outdir: string; wasm: boolean }>;

export function serveWeb(options?: {
  dir?: string;
  port?: number;
  host?: string;
}): Promise<{ url: string; close: () => Promise<void> }>;
