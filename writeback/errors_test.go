package writeback

import (
	"errors"
	"fmt"
	"testing"

	"github.com/go-sql-driver/mysql"
)

func TestIsPermanent(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"conversion", fmt.Errorf("x: %w", &ConversionError{}), true},
		{"expr", &ExprError{Path: "p", Err: errors.New("boom")}, true},
		{"not found", &RowNotFoundError{Table: "t"}, true},
		{"no mapping", fmt.Errorf("apply: %w", ErrNoMapping), true},
		{"deadlock", classify("update", "t", &mysql.MySQLError{Number: 1213}), false},
		{"lock wait", classify("update", "t", &mysql.MySQLError{Number: 1205}), false},
		{"read only", classify("update", "t", &mysql.MySQLError{Number: 1290}), false},
		{"fk", classify("update", "t", &mysql.MySQLError{Number: 1452}), true},
		{"data too long", classify("update", "t", &mysql.MySQLError{Number: 1406}), true},
		{"denied", classify("update", "t", &mysql.MySQLError{Number: 1142}), true},
		{"bad conn", classify("update", "t", mysql.ErrInvalidConn), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}
