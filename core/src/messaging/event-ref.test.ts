import { describe, expect, it } from 'vitest';
import { Errors } from '../errors.js';
import { defineEvent } from './event-ref.js';
import { MemoryEventBus } from './memory-event-bus.js';

interface ThingEvent {
  kind: string;
  thingId: string;
}

const thingEvent = defineEvent<ThingEvent>()({ plugin: 'things', subject: 'things.{projectId}.{kind}' });

describe('defineEvent', () => {
  it('builds subjects from the template and delivers typed payloads; a parameter left out of a subscription matches every value', async () => {
    const bus = new MemoryEventBus();
    const seen: string[] = [];
    const all = await thingEvent.subscribe(bus, {}, (e, subject) => void seen.push(`all ${subject} ${e.thingId}`));
    const deleted = await thingEvent.subscribe(bus, { kind: 'deleted' }, (e) => void seen.push(`deleted ${e.thingId}`));
    expect(thingEvent.subject({ projectId: 'p1', kind: 'created' })).toBe('things.p1.created');
    await thingEvent.publish(bus, { projectId: 'p1', kind: 'created' }, { kind: 'created', thingId: 't1' });
    await thingEvent.publish(bus, { projectId: 'p2', kind: 'deleted' }, { kind: 'deleted', thingId: 't2' });
    await expect.poll(() => seen.length).toBe(3);
    await all.unsubscribe();
    await deleted.unsubscribe();
    await bus.close();
    expect(seen.sort()).toEqual(['all things.p1.created t1', 'all things.p2.deleted t2', 'deleted t2']);
  });

  it('refuses a parameter that is not one token, and a template outside the plugin', async () => {
    const bus = new MemoryEventBus();
    await expect(thingEvent.publish(bus, { projectId: 'a.b', kind: 'created' }, { kind: 'created', thingId: 't' })).rejects.toThrow(/parameter projectId must be one token/);
    await expect(thingEvent.publish(bus, { projectId: '*', kind: 'created' }, { kind: 'created', thingId: 't' })).rejects.toThrow(/parameter projectId/);
    await bus.close();
    try {
      defineEvent<ThingEvent>()({ plugin: 'things', subject: 'other.{kind}' });
      expect.unreachable();
    } catch (e) {
      expect(Errors.PLUGIN_INVALID.is(e)).toBe(true);
      expect((e as Error).message).toMatch(/must start with the plugin id/);
    }
  });
});
