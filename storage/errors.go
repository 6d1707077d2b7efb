package storage

// How storage says what went wrong: classify marks what retrying cannot
// fix, explain names the address and the setting to change.

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/column"
	"github.com/meshguard/meshguard/consumer"
)

// permanentCodes are server error codes that say the request itself is
// wrong for this table: the same insert fails the same way every time.
// Anything not listed (timeouts, too many parts, memory limits, a server
// shutting down, authentication, codes added later) is retryable: when in
// doubt, keep the batch rather than drop it.
var permanentCodes = map[int32]bool{
	6:   true, // CANNOT_PARSE_TEXT
	8:   true, // THERE_IS_NO_COLUMN
	10:  true, // NOT_FOUND_COLUMN_IN_BLOCK
	16:  true, // NO_SUCH_COLUMN_IN_TABLE
	20:  true, // NUMBER_OF_COLUMNS_DOESNT_MATCH
	27:  true, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
	36:  true, // BAD_ARGUMENTS
	41:  true, // CANNOT_PARSE_DATETIME
	43:  true, // ILLEGAL_TYPE_OF_ARGUMENT
	44:  true, // ILLEGAL_COLUMN
	47:  true, // UNKNOWN_IDENTIFIER
	50:  true, // UNKNOWN_TYPE
	53:  true, // TYPE_MISMATCH
	60:  true, // UNKNOWN_TABLE
	62:  true, // SYNTAX_ERROR
	69:  true, // ARGUMENT_OUT_OF_BOUND
	70:  true, // CANNOT_CONVERT_TYPE
	72:  true, // CANNOT_PARSE_NUMBER
	81:  true, // UNKNOWN_DATABASE
	117: true, // INCORRECT_DATA
	131: true, // TOO_LARGE_STRING_SIZE
}

// classify marks err Permanent when retrying cannot help: a server
// exception with a permanentCodes code, or the client finding that the
// table's column types do not take what meshguard sends.
func classify(err error) error {
	if err == nil || consumer.IsPermanent(err) {
		return err
	}
	var exc *clickhouse.Exception
	if errors.As(err, &exc) {
		if permanentCodes[exc.Code] {
			return consumer.Permanent(err)
		}
		return err
	}
	var conv *column.ColumnConverterError
	var unsupported *column.UnsupportedColumnTypeError
	if errors.As(err, &conv) || errors.As(err, &unsupported) {
		return consumer.Permanent(err)
	}
	return err
}

// explain wraps err, met talking to the server, with its address and,
// when the cause is a setting (credentials, TLS), the key to fix.
// Authentication failures are Permanent: retrying with the same password
// cannot help, and an operator must hear of it at once.
func (c *ClickHouse) explain(err error) error {
	if err == nil {
		return nil
	}
	where := strings.Join(c.addrs, ",")
	var exc *clickhouse.Exception
	var unknownCA x509.UnknownAuthorityError
	var hostname x509.HostnameError
	var recordHeader tls.RecordHeaderError
	switch {
	case errors.As(err, &exc) && authCodes[exc.Code]:
		return consumer.Permanent(fmt.Errorf("clickhouse %s: %w (the server refused user %q: check clickhouse.password (or clickhouse.password_file, MESHGUARD_CLICKHOUSE_PASSWORD) and clickhouse.username, or the dsn's credentials)", where, err, c.user))
	case errors.As(err, &unknownCA):
		return fmt.Errorf("clickhouse %s: %w (the server's certificate is not signed by a CA in clickhouse.tls.ca_file: check clickhouse.tls.ca_file)", where, err)
	case errors.As(err, &hostname):
		return fmt.Errorf("clickhouse %s: %w (the certificate does not name this address: set clickhouse.tls.server_name)", where, err)
	case errors.As(err, &recordHeader):
		return fmt.Errorf("clickhouse %s: %w (this port does not speak TLS: use the server's secure port (tcp_port_secure) or turn clickhouse.tls off)", where, err)
	}
	return err
}

// authCodes are the server's error codes for refused credentials.
var authCodes = map[int32]bool{
	192: true, // UNKNOWN_USER
	193: true, // WRONG_PASSWORD
	194: true, // REQUIRED_PASSWORD
	195: true, // IP_ADDRESS_NOT_ALLOWED
	516: true, // AUTHENTICATION_FAILED (modern servers say only this)
}
