import t from 'tap';
import { compatSeriesFor, eraFor, parseVersion } from '../../harness/eras/eras.js';

t.test('every supported version finds exactly its era', async (t) => {
  t.equal(eraFor(parseVersion('2.6.20'))?.name, '2.6.20-2.6.23');
  t.equal(eraFor(parseVersion('2.6.23'))?.name, '2.6.20-2.6.23');
  t.equal(eraFor(parseVersion('2.6.24'))?.name, '2.6.24');
  t.equal(eraFor(parseVersion('3.6.11'))?.name, '2.6.25-3.6');
  t.equal(eraFor(parseVersion('6.1.192'))?.name, '3.17-current');
  t.equal(eraFor(parseVersion('2.6.19')), undefined, 'older than 2.6.20 is not supported');
});

t.test('compat series follow the compiler', async (t) => {
  const era = eraFor(parseVersion('2.6.20'))!;
  t.same(compatSeriesFor(era, 12).map((c) => c.dir), ['2.6.20']);
  t.same(compatSeriesFor(era, 4), [], 'a gcc 4 needs no compat series');
  t.equal(eraFor(parseVersion('2.6.24'))!.impliedOptions?.CONFIG_UTS_NS, 'y');
  t.equal(parseVersion('2.6.20-rc1').extra, '-rc1');
});
