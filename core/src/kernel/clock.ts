/** Time as a service, so tests and sweepers can control it. */
export interface Clock {
  now(): number;
}
export const systemClock: Clock = { now: () => Date.now() };
