package writeback_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/rowhook/rowhook/internal/yamlconf"
	"github.com/rowhook/rowhook/writeback"
)

// TestNew_configPositions: loaded from YAML, a mapping column that does not
// exist is reported at its line and column in the file.
func TestNew_configPositions(t *testing.T) {
	c := newCRM(t)
	var conf struct {
		Writeback writeback.Config `yaml:"writeback"`
		Rules     []struct {
			Name      string             `yaml:"name"`
			Writeback *writeback.Mapping `yaml:"writeback"`
		} `yaml:"rules"`
	}
	conf.Writeback = writeback.DefaultConfig()
	f, err := os.Open("testdata/rowhook.yaml")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{"WB_DSN": pair.Primary.DSN(c.schema)}
	doc, err := yamlconf.ParseEnv("rowhook.yaml", f, &conf, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	if conf.Writeback.Timeout != 3*time.Second || conf.Writeback.LockWaitTimeout != 2*time.Second || conf.Writeback.Mode != writeback.ModeMarker {
		t.Errorf("decoded %+v", conf.Writeback)
	}
	if err := conf.Writeback.Validate(); err != nil {
		t.Fatal(err)
	}
	mappings := map[string]*writeback.Mapping{}
	for i, r := range conf.Rules {
		if err := r.Writeback.Validate(fmt.Sprintf("rules[%d].writeback", i)); err != nil {
			t.Fatal(doc.Locate(err))
		}
		mappings[r.Name] = r.Writeback
	}
	_, err = writeback.New(context.Background(), conf.Writeback, mappings, writeback.Deps{})
	if err == nil {
		t.Fatal("New accepted cf_erp_idd")
	}
	got := doc.Locate(err).Error()
	want := fmt.Sprintf("rowhook.yaml:13:21: rules[0].writeback.set.cf_erp_idd: table %s.vtiger_potentialscf has no column cf_erp_idd (did you mean cf_erp_id?)", c.schema)
	if got != want {
		t.Errorf("located error:\n got %s\nwant %s", got, want)
	}
	if strings.Contains(got, "WB_DSN") {
		t.Errorf("env reference in error: %s", got)
	}
}
