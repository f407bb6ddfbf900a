package controllers_test

import (
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/rest"
)

// schema is the part of an OpenAPI v3 schema `kubectl explain` reads.
type schema struct {
	Description          string             `json:"description"`
	Properties           map[string]*schema `json:"properties"`
	Items                *schema            `json:"items"`
	AdditionalProperties json.RawMessage    `json:"additionalProperties"`
	Ref                  string             `json:"$ref"`
	AllOf                []*schema          `json:"allOf"`
}

// fieldsSeen counts the properties undescribed looked at.
var fieldsSeen int

// undescribed returns the paths under s whose property has no description.
func undescribed(path string, s *schema) []string {
	if s == nil || s.Ref != "" {
		return nil // a reference to a described type (ObjectMeta, Condition)
	}
	var out []string
	for name, p := range s.Properties {
		fieldsSeen++
		if strings.TrimSpace(p.Description) == "" {
			out = append(out, path+"."+name)
		}
		out = append(out, undescribed(path+"."+name, p)...)
	}
	out = append(out, undescribed(path+"[]", s.Items)...)
	if len(s.AdditionalProperties) > 0 && s.AdditionalProperties[0] == '{' {
		var ap schema
		if json.Unmarshal(s.AdditionalProperties, &ap) == nil {
			out = append(out, undescribed(path+"{}", &ap)...)
		}
	}
	return out
}

var _ = Describe("kubectl explain", func() {
	It("has a description for every field of every kind, as the API server publishes them", func() {
		hc, err := rest.HTTPClientFor(cfg)
		Expect(err).NotTo(HaveOccurred())
		// The API server publishes a CRD's OpenAPI a moment after the CRD is established.
		var raw []byte
		Eventually(func(g Gomega) {
			resp, err := hc.Get(strings.TrimSuffix(cfg.Host, "/") + "/openapi/v3/apis/federation.fedforge.dev/v1alpha1")
			g.Expect(err).NotTo(HaveOccurred())
			defer resp.Body.Close()
			g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
			raw, err = io.ReadAll(resp.Body)
			g.Expect(err).NotTo(HaveOccurred())
		}).Should(Succeed())
		var doc struct {
			Components struct {
				Schemas map[string]*schema `json:"schemas"`
			} `json:"components"`
		}
		Expect(json.Unmarshal(raw, &doc)).To(Succeed())
		kinds := 0
		var missing []string
		for name, s := range doc.Components.Schemas {
			if !strings.HasPrefix(name, "dev.fedforge.federation.v1alpha1.") || strings.HasSuffix(name, "List") {
				continue
			}
			kinds++
			kind := strings.TrimPrefix(name, "dev.fedforge.federation.v1alpha1.")
			if strings.TrimSpace(s.Description) == "" {
				missing = append(missing, kind)
			}
			missing = append(missing, undescribed(kind, s)...)
		}
		Expect(kinds).To(Equal(4), "the four kinds are published")
		Expect(fieldsSeen).To(BeNumerically(">", 150), "the walk reached the nested fields")
		GinkgoWriter.Printf("%d fields described\n", fieldsSeen)
		sort.Strings(missing)
		Expect(missing).To(BeEmpty(), "fields `kubectl explain` shows without a description")
	})
})
