/** Values per IN (…) list or multi-row INSERT: well under every database's parameter limit. */
export const IN_BATCH = 500;

/** `items` in slices of `size`. */
export function* slices<T>(items: readonly T[], size = IN_BATCH): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}

/** `?, ?, …`: `n` placeholders. */
export const marks = (n: number): string => Array.from({ length: n }, () => '?').join(', ');
