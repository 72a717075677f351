import { randomInt } from 'node:crypto';

/**
 * Names for runs created without one, as W&B makes them: "adjective-noun-N",
 * where N is the run's number in its project ("silent-river-12").
 */
const ADJECTIVES = [
  'amber', 'ancient', 'autumn', 'bold', 'brave', 'bright', 'calm', 'cerulean', 'clever', 'cosmic',
  'crimson', 'dainty', 'dark', 'dazzling', 'deep', 'divine', 'dry', 'eager', 'easy', 'electric',
  'ethereal', 'fancy', 'fearless', 'floral', 'fluent', 'fresh', 'frosty', 'gentle', 'glad', 'golden',
  'grateful', 'hardy', 'hopeful', 'icy', 'jolly', 'kind', 'lively', 'lucky', 'lunar', 'misty',
  'noble', 'olive', 'peach', 'polar', 'proud', 'quiet', 'rare', 'restful', 'rosy', 'royal',
  'sage', 'scarlet', 'serene', 'sharp', 'silent', 'silver', 'smooth', 'snowy', 'solar', 'sparkling',
  'stellar', 'still', 'stoic', 'sunny', 'swift', 'treasured', 'twilight', 'upbeat', 'valiant', 'vibrant',
  'vivid', 'wandering', 'warm', 'wild', 'winter', 'wise', 'woven', 'young', 'zesty', 'zany',
];

const NOUNS = [
  'aurora', 'bird', 'blaze', 'breeze', 'brook', 'bush', 'butterfly', 'canyon', 'cedar', 'cloud',
  'comet', 'dawn', 'dew', 'dream', 'dust', 'eon', 'feather', 'field', 'fire', 'firefly',
  'flower', 'fog', 'forest', 'frog', 'frost', 'galaxy', 'glade', 'glitter', 'grass', 'haze',
  'hill', 'lake', 'leaf', 'meadow', 'moon', 'morning', 'mountain', 'night', 'oasis', 'ocean',
  'paper', 'pine', 'planet', 'pond', 'rain', 'resonance', 'river', 'sea', 'shadow', 'shape',
  'silence', 'sky', 'smoke', 'snow', 'snowflake', 'sound', 'spaceship', 'spark', 'spring', 'star',
  'starlight', 'sun', 'sunset', 'surf', 'thunder', 'tree', 'universe', 'valley', 'violet', 'voice',
  'water', 'wave', 'wildflower', 'wind', 'wood', 'yogurt', 'plasma', 'lion', 'music', 'capybara',
];

const pick = (words: readonly string[]) => words[randomInt(words.length)]!;

/** A fresh name for the `number`-th run of a project. */
export function generateRunName(number: number): string {
  return `${pick(ADJECTIVES)}-${pick(NOUNS)}-${number}`;
}
