// Escaping for the report's HTML: text and attribute values, and JSON inside a <script> element.

const HTML_ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&#39;',
};

/** Text for an HTML text node or a quoted attribute value. */
export function escapeHtml(value: unknown): string {
  return String(value).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}

/**
 * JSON safe to place inside `<script type="application/json">`: `<`, `>` and `&` become \u escapes
 * (so no `</script>` or `<!--` can appear), as do U+2028 and U+2029. JSON.parse reads it back
 * unchanged. NaN and ±Infinity become null.
 */
export function jsonForScript(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/**
 * A script's source for an inline <script> element: `</script` (any case) cannot appear in it.
 * Only valid where such a sequence could occur inside a string or regex literal, which is where
 * a bundled library could hold one.
 */
export function inlineScript(source: string): string {
  return source.replace(/<\/(script)/gi, '<\\/$1').replace(/<!--/g, '<\\!--');
}

/** Numbers for tables: 4 significant digits, exponent form for very small or large magnitudes. */
export function formatNumber(x: number | null | undefined): string {
  if (x === null || x === undefined || Number.isNaN(x)) return '–';
  if (!Number.isFinite(x)) return x > 0 ? '∞' : '−∞';
  if (x === 0) return '0';
  const a = Math.abs(x);
  const text = a < 1e-3 || a >= 1e6 ? x.toExponential(3) : x.toPrecision(4);
  return text.replace('-', '−');
}
