package writeback

import (
	"testing"

	"github.com/rowhook/rowhook/cdc"
)

func TestIsOwnChange(t *testing.T) {
	tests := []struct {
		annotation string
		want       bool
	}{
		{"/* rowhook writeback d-1:2 */ UPDATE `vtiger`.`vtiger_potentialscf` SET `cf_erp_id` = 'E-1' WHERE `potentialid` = 3", true},
		{"  /* rowhook writeback x */ UPDATE t SET a=1", true},
		{"UPDATE t SET note='/* rowhook writeback x */' WHERE id=1", false},
		{"UPDATE vtiger_potential SET sales_stage='Closed Won'", false},
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.annotation, func(t *testing.T) {
			if got := IsOwnChange(&cdc.Change{Annotation: tt.annotation}); got != tt.want {
				t.Errorf("IsOwnChange = %v, want %v", got, tt.want)
			}
		})
	}
	if IsOwnChange(nil) {
		t.Error("IsOwnChange(nil)")
	}
}

func TestIsOwnTransaction(t *testing.T) {
	own := &cdc.Transaction{Changes: []cdc.Change{
		{Schema: "vtiger", Table: "rowhook_writeback_marker"},
		{Schema: "vtiger", Table: "vtiger_potentialscf"},
	}}
	other := &cdc.Transaction{Changes: []cdc.Change{{Schema: "vtiger", Table: "vtiger_potentialscf"}}}
	tests := []struct {
		name   string
		tx     *cdc.Transaction
		marker string
		want   bool
	}{
		{"own, qualified", own, "vtiger.rowhook_writeback_marker", true},
		{"own, any schema", own, "rowhook_writeback_marker", true},
		{"own, other schema", own, "crm.rowhook_writeback_marker", false},
		{"other", other, "vtiger.rowhook_writeback_marker", false},
		{"nil", nil, "rowhook_writeback_marker", false},
		{"no marker", own, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsOwnTransaction(tt.tx, tt.marker); got != tt.want {
				t.Errorf("IsOwnTransaction = %v, want %v", got, tt.want)
			}
		})
	}
}
