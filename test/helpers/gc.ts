/** Garbage collection on demand in tests, and a settle loop so native finalizers run. */
import v8 from 'node:v8';
import vm from 'node:vm';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Collects repeatedly, yielding to the event loop so that deferred finalizers run too. */
export async function collect(): Promise<void> {
  for (let i = 0; i < 10; i++) {
    gc();
    await new Promise((r) => setImmediate(r));
  }
}
