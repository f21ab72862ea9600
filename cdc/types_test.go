package cdc_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"

	"github.com/rowhook/rowhook/cdc"
)

func TestReader_ColumnTypes(t *testing.T) {
	schema, db := srv.NewSchema(t)
	mustExec(t, db, `CREATE TABLE types (
		id INT PRIMARY KEY,
		i8 TINYINT, u8 TINYINT UNSIGNED, i16 SMALLINT, u16 SMALLINT UNSIGNED,
		i24 MEDIUMINT, u24 MEDIUMINT UNSIGNED, i32 INT, u32 INT UNSIGNED,
		i64 BIGINT, u64 BIGINT UNSIGNED,
		dec1 DECIMAL(20,6), dec2 DECIMAL(5,2), dec3 DECIMAL(65,30),
		f FLOAT, d DOUBLE,
		b1 BIT(1), b64 BIT(64), b10 BIT(10),
		dt DATE, dtz DATE, dtm DATETIME, dtm6 DATETIME(6), dtm3 DATETIME(3), dtmz DATETIME,
		tm TIME, tm6 TIME(6), tmneg TIME,
		ts TIMESTAMP(3) NULL, tsz TIMESTAMP NULL,
		yr YEAR,
		ch CHAR(5), vc VARCHAR(50), tx TEXT, mtx MEDIUMTEXT, ltx LONGTEXT,
		bin BINARY(4), vbin VARBINARY(10), bl BLOB, lbl LONGBLOB,
		en ENUM('a','b','c'), st SET('x','y','z'), st0 SET('x','y','z'),
		js JSON,
		nul VARCHAR(10), empty VARCHAR(10)
	) DEFAULT CHARSET=utf8mb4`)
	st := startStream(t, srv, schema, currentGTID(t, srv), nil)
	conn, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := context.Background()
	// A +02:00 session writes the TIMESTAMP: the change must carry UTC.
	// Zero dates need a non-strict sql_mode, as Vtiger uses.
	mustConn := func(q string, args ...any) {
		t.Helper()
		if _, err := conn.ExecContext(ctx, q, args...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	mustConn("SET time_zone = '+02:00', sql_mode = 'NO_ENGINE_SUBSTITUTION'")
	mustConn(`INSERT INTO types VALUES (1,
		-128, 255, -32768, 65535,
		-8388608, 16777215, -2147483648, 4294967295,
		-9223372036854775808, 18446744073709551615,
		'-12345678901234.123450', 0.5, '12345678901234567890123456789012345.123456789012345678901234567890',
		0.1, 3.141592653589793,
		b'1', b'1111111111111111111111111111111111111111111111111111111111111111', b'1000000001',
		'2024-02-29', '0000-00-00', '2024-02-29 13:14:15', '2024-02-29 13:14:15.123456', '2024-02-29 13:14:15.120', '0000-00-00 00:00:00',
		'838:59:59', '12:34:56.789012', '-01:02:03',
		'2024-02-29 13:14:15.250', '2024-01-01 00:00:00',
		2024,
		'ab', 'Grüße 😀 ✓', 'line1\nline2', 'mediumtext', 'long😀text',
		'ab', x'00ff10', x'deadbeef', x'',
		'b', 'x,z', '',
		'{"a": [1, 2.5, "x"], "b": null}',
		NULL, '')`)
	got := st.waitChanges(t, 1)[0].After

	want := cdc.Row{
		"id": int64(1),
		"i8": int64(-128), "u8": uint64(255), "i16": int64(-32768), "u16": uint64(65535),
		"i24": int64(-8388608), "u24": uint64(16777215), "i32": int64(-2147483648), "u32": uint64(4294967295),
		"i64": int64(-9223372036854775808), "u64": uint64(18446744073709551615),
		"dec1": cdc.Decimal("-12345678901234.123450"), "dec2": cdc.Decimal("0.50"),
		"dec3": cdc.Decimal("12345678901234567890123456789012345.123456789012345678901234567890"),
		"f":    0.1, "d": 3.141592653589793,
		"b1": uint64(1), "b64": uint64(18446744073709551615), "b10": uint64(513),
		"dt": "2024-02-29", "dtz": "0000-00-00", "dtm": "2024-02-29 13:14:15", "dtm6": "2024-02-29 13:14:15.123456",
		"dtm3": "2024-02-29 13:14:15.120", "dtmz": "0000-00-00 00:00:00",
		"tm": "838:59:59", "tm6": "12:34:56.789012", "tmneg": "-01:02:03",
		"ts": "2024-02-29T11:14:15.250Z", "tsz": "2023-12-31T22:00:00Z",
		"yr": int64(2024),
		"ch": "ab", "vc": "Grüße 😀 ✓", "tx": "line1\nline2", "mtx": "mediumtext", "ltx": "long😀text",
		"bin": cdc.Bytes("ab\x00\x00"), "vbin": cdc.Bytes{0x00, 0xff, 0x10}, "bl": cdc.Bytes{0xde, 0xad, 0xbe, 0xef}, "lbl": cdc.Bytes{},
		"en": "b", "st": "x,z", "st0": "",
		"js":  cdc.JSON(`{"a": [1, 2.5, "x"], "b": null}`),
		"nul": nil, "empty": "",
	}
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Errorf("%s: missing", k)
			continue
		}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s = %#v (%T), want %#v (%T)", k, g, g, w, w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("got %d columns, want %d", len(got), len(want))
	}

	// The JSON rendering users see: exact decimals as strings, big unsigned
	// integers exact, binary as base64, JSON documents inline, NULL as null.
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	for k, w := range map[string]string{
		"u64": `18446744073709551615`, "dec1": `"-12345678901234.123450"`, "vbin": `"AP8Q"`,
		"js": `{"a":[1,2.5,"x"],"b":null}`, "nul": `null`, "empty": `""`, "f": `0.1`,
	} {
		if string(m[k]) != w {
			t.Errorf("json %s = %s, want %s", k, m[k], w)
		}
	}
}
