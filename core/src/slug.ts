/** A URL-safe slug from a name: "My Project 2" → "my-project-2" (accents dropped; at most `max` characters, no dash at either end). */
export function slugify(name: string, max = 100): string {
  return name
    .normalize('NFKD')
    .replace(/[\u0300-\u036f]/g, '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, max)
    .replace(/-+$/g, '');
}
