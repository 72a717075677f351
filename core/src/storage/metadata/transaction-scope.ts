import { AsyncLocalStorage } from 'node:async_hooks';
import type { SqlExecutor } from './metadata-store.js';

/**
 * Remembers, per async context, which transaction of which store is open, so a
 * store can route a call made from inside `transaction(fn)` into that
 * transaction instead of queueing it behind the transaction (a self-deadlock on
 * the single SQLite connection, and a row-lock wait on PostgreSQL), and turn a
 * nested `transaction()` into a savepoint.
 *
 * One AsyncLocalStorage for every store: on Node 20 each enabled instance adds
 * work to every promise created in the process.
 */
export interface OpenTransaction {
  readonly tx: SqlExecutor;
  /** False once the transaction committed or rolled back. */
  readonly isOpen: () => boolean;
}

interface Frame {
  readonly owner: object;
  readonly open: OpenTransaction;
  readonly parent: Frame | undefined;
}

const frames = new AsyncLocalStorage<Frame>();
let savepointCounter = 0;

/** The transaction of `owner` the caller is running inside, if it is still open. */
export function currentTransaction(owner: object): OpenTransaction | undefined {
  for (let frame = frames.getStore(); frame; frame = frame.parent) {
    if (frame.owner === owner) return frame.open.isOpen() ? frame.open : undefined;
  }
  return undefined;
}

/** Runs `fn` so that `currentTransaction(owner)` inside it (and in everything it starts) is `open`. */
export function runInTransaction<T>(owner: object, open: OpenTransaction, fn: () => Promise<T>): Promise<T> {
  return frames.run({ owner, open, parent: frames.getStore() }, fn);
}

/**
 * Runs `fn` inside a savepoint of the open transaction: the savepoint is
 * released when `fn` resolves and rolled back (the outer transaction goes on)
 * when it throws. Nested transactions of one transaction must run one after
 * another, not concurrently: savepoints are a stack on one connection.
 */
export async function inSavepoint<T>(open: OpenTransaction, fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
  const name = `wldb_sp_${++savepointCounter}`;
  await open.tx.run(`SAVEPOINT ${name}`);
  let result: T;
  try {
    result = await fn(open.tx);
  } catch (err) {
    if (open.isOpen()) {
      await open.tx.run(`ROLLBACK TO SAVEPOINT ${name}`);
      await open.tx.run(`RELEASE SAVEPOINT ${name}`);
    }
    throw err;
  }
  await open.tx.run(`RELEASE SAVEPOINT ${name}`);
  return result;
}
