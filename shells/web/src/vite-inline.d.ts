// Vite's `?inline` imports of CSS return the stylesheet as a string (for shadow roots).
declare module '*.css?inline' {
  const css: string;
  export default css;
}
