import {
  formatAge,
  formatBytes,
  formatTable,
  printable,
  shortCommit,
  shortDigest,
} from '../../cli/table';

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

  test('Given an empty header and a last cell ending in spaces, when formatted, then no line ends in a space', () => {
    expect(
      formatTable(
        [{ header: 'REVISION', align: 'right' }, { header: '' }, { header: 'TAG' }],
        [
          ['3', 'current', 'v1 '],
          ['12', '', ''],
        ],
      ),
    ).toBe(['REVISION           TAG', '       3  current  v1', '      12', ''].join('\n'));
  });

  test.each<[string, { header: string }[], string]>([
    ['two columns', [{ header: 'A' }, { header: 'B' }], 'A  B\n'],
    ['a last column without a header', [{ header: 'NAME' }, { header: '' }], 'NAME\n'],
    ['no columns', [], '\n'],
  ])('Given %s and no rows, when formatted, then the header line alone', (_name, columns, text) => {
    expect(formatTable(columns, [])).toBe(text);
  });

  test('Given cells with control characters (from a registry or a cluster), when formatted, then they are escaped and the columns measured as printed', () => {
    expect(
      formatTable(
        [{ header: 'TAG' }, { header: 'CAUSE' }],
        [
          ['v1\u001b[2J', 'a\r\nb'],
          ['ok', 'c\u009b31md\u2028e\u007f'],
        ],
      ),
    ).toBe(
      [
        'TAG          CAUSE',
        'v1\\u001b[2J  a\\u000d\\u000ab',
        'ok           c\\u009b31md\\u2028e\\u007f',
        '',
      ].join('\n'),
    );
  });

  test.each<[string, string[][], RegExp]>([
    [
      'a row short of a cell',
      [
        ['a', 'b', 'c'],
        ['d', 'e'],
      ],
      /^formatTable: row 1 has 2 cells for 3 columns \(A, B, C\)/,
    ],
    [
      'a row with a cell too many',
      [['a', 'b', 'c', 'd']],
      /^formatTable: row 0 has 4 cells for 3 columns/,
    ],
  ])('Given %s, when formatted, then it throws naming the row', (_name, rows, message) => {
    expect(() => formatTable([{ header: 'A' }, { header: 'B' }, { header: 'C' }], rows)).toThrow(
      message,
    );
  });
});

describe('printable', () => {
  test.each([
    ['v1.2.0', 'v1.2.0'],
    ['\u001b]0;pwned\u0007', '\\u001b]0;pwned\\u0007'],
    ['tab\there', 'tab\\u0009here'],
    ['crème brûlée 🚀', 'crème brûlée 🚀'],
    ['\u0085next line', '\\u0085next line'],
  ])('Given %j, when made printable, then %j', (text, shown) => {
    expect(printable(text)).toBe(shown);
  });
});

describe('formatBytes', () => {
  test.each<[number, string]>([
    [0, '0 B'],
    [1, '1 B'],
    [512, '512 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [1500, '1.46 KiB'],
    [10 * 1024, '10 KiB'],
    [12.3 * 1024 * 1024, '12.3 MiB'],
    [120 * 1024 * 1024, '120 MiB'],
    [1024 * 1024 - 1, '1 MiB'],
    [3 * 1024 ** 3, '3 GiB'],
    [1.25 * 1024 ** 4, '1.25 TiB'],
    [2 ** 60, '1 EiB'],
    [2 ** 70, '1024 EiB'],
  ])('Given %d bytes, when formatted, then %s', (bytes, text) => {
    expect(formatBytes(bytes)).toBe(text);
  });

  test.each([-1, Number.NaN, Number.POSITIVE_INFINITY])(
    'Given %d, when formatted, then it throws: not a size',
    (bytes) => {
      expect(() => formatBytes(bytes)).toThrow(/^formatBytes: .* is not a size in bytes/);
    },
  );
});

describe("formatAge: kubectl's AGE column (apimachinery duration.HumanDuration)", () => {
  const now = new Date('2026-11-28T12:00:00Z');
  const ago = (seconds: number): Date => new Date(now.getTime() - seconds * 1000);
  const m = 60;
  const h = 60 * m;
  const d = 24 * h;
  const y = 365 * d;
  test.each<[string, Date, string]>([
    ['now', now, '0s'],
    ['45 s', ago(45), '45s'],
    ['119.9 s', ago(119.9), '119s'],
    ['2 min', ago(2 * m), '2m'],
    ['5 min 30 s', ago(5 * m + 30), '5m30s'],
    ['9 min 59 s', ago(9 * m + 59), '9m59s'],
    ['12 min 30 s', ago(12 * m + 30), '12m'],
    ['2 h 59 min', ago(179 * m), '179m'],
    ['3 h', ago(3 * h), '3h'],
    ['7 h 20 min', ago(7 * h + 20 * m), '7h20m'],
    ['30 h 10 min', ago(30 * h + 10 * m), '30h'],
    ['4 d', ago(4 * d), '4d'],
    ['4 d 6 h', ago(4 * d + 6 * h), '4d6h'],
    ['7 d 23 h', ago(7 * d + 23 * h), '7d23h'],
    ['8 d 5 h', ago(8 * d + 5 * h), '8d'],
    ['300 d', ago(300 * d), '300d'],
    ['2 years', ago(2 * y), '2y'],
    ['3 years 45 d', ago(3 * y + 45 * d), '3y45d'],
    ['9 years 100 d', ago(9 * y + 100 * d), '9y'],
    ['1.5 s in the future (clock skew)', ago(-1.5), '0s'],
    ['2 s in the future', ago(-2), '<invalid>'],
    ['an invalid date', new Date('not a date'), '<unknown>'],
  ])('Given %s ago, when its age is formatted, then %s', (_name, date, text) => {
    expect(formatAge(date, now)).toBe(text);
  });
});

describe('short forms', () => {
  test.each([
    [`sha256:${'ab'.repeat(32)}`, 'sha256:abababababab'],
    [`sha512:${'c'.repeat(128)}`, 'sha512:cccccccccccc'],
    ['sha256:abc', 'sha256:abc'],
    ['latest', 'latest'],
  ])('Given the digest %s, when shortened, then %s', (digest, short) => {
    expect(shortDigest(digest)).toBe(short);
  });

  test.each([
    ['6e0de7938dda5363e2192fe2a2ec39987a3573b0', '6e0de7938dda'],
    ['6e0de7938dda', '6e0de7938dda'],
    ['v1.2.0', 'v1.2.0'],
  ])('Given the commit %s, when shortened, then %s', (commit, short) => {
    expect(shortCommit(commit)).toBe(short);
  });
});
