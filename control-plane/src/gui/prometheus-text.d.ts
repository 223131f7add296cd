// The parser ships no types; what Portico reads of its prom2json-shaped output.
declare module 'parse-prometheus-text-format' {
  export default function parsePrometheusTextFormat(text: string): unknown[];
}
