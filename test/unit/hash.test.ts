import t from 'tap';
import { hashValue, stableStringify } from '../../harness/common/hash.js';

t.test('cache keys do not depend on key order, and do depend on every value', async (t) => {
  t.equal(hashValue({ a: 1, b: { c: [1, 2], d: 'x' } }), hashValue({ b: { d: 'x', c: [1, 2] }, a: 1 }));
  t.not(hashValue({ a: 1, b: { c: [1, 2] } }), hashValue({ a: 1, b: { c: [2, 1] } }));
  t.not(hashValue({ patches: ['aa'] }), hashValue({ patches: ['ab'] }));
  t.equal(stableStringify({ x: undefined, y: 1 }), '{"y":1}');
});
