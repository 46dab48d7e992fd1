import { cell, formatAge, formatBytes, formatTable, shortDigest } from '../../cli/table';

describe('formatTable', () => {
  test('Given rows of different widths, when formatted, then columns are padded by code points, two spaces apart, right-aligned where asked, no trailing spaces', () => {
    expect(
      formatTable(
        [{ header: 'TAG' }, { header: 'BUILD', align: 'right' }, { header: 'NOTES' }],
        [
          ['6e0de7938dda', '#41', 'paused'],
          ['v1.2.0', '#7', ''],
          ['émoji-🚀', '', 'x'],
        ],
      ),
    ).toBe(
      [
        'TAG           BUILD  NOTES',
        '6e0de7938dda    #41  paused',
        'v1.2.0           #7',
        'émoji-🚀              x',
        '',
      ].join('\n'),
    );
  });

  test('Given no rows, when formatted, then the header alone', () => {
    expect(formatTable([{ header: 'A' }, { header: 'B' }], [])).toBe('A  B\n');
  });

  test('Given a cell with control characters (from a registry or a cluster), when formatted, then they are escaped', () => {
    expect(cell('v1\u001b[2J\nrm')).toBe('v1\\u001b[2J\\u000arm');
    expect(formatTable([{ header: 'TAG' }], [['a\rb']])).toBe('TAG\na\\u000db\n');
  });
});

describe('short forms', () => {
  test.each([
    [0, '0 B'],
    [512, '512 B'],
    [1536, '1.5 KiB'],
    [12.3 * 1024 * 1024, '12.3 MiB'],
    [120 * 1024 * 1024, '120 MiB'],
    [3 * 1024 ** 3, '3 GiB'],
  ])('Given %d bytes, when formatted, then %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  const now = new Date('2026-11-28T12:00:00Z');
  test.each([
    ['2026-11-28T11:59:15Z', '45s'],
    ['2026-11-28T11:48:00Z', '12m'],
    ['2026-11-28T09:00:00Z', '3h'],
    ['2026-11-24T12:00:00Z', '4d'],
    ['2026-11-28T12:05:00Z', '0s'],
  ])('Given %s, when its age is formatted, then %s', (date, text) => {
    expect(formatAge(new Date(date), now)).toBe(text);
  });

  test('Given a digest, when shortened, then the algorithm and 12 hex', () => {
    expect(shortDigest(`sha256:${'ab'.repeat(32)}`)).toBe('sha256:abababababab');
  });
});
