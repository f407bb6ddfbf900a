package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fedforge/fedforge/internal/activitypub"
)

// keyServer serves the sender actors' documents.
type keyServer struct {
	base string
	rsa  []*rsa.PrivateKey
	ed   []ed25519.PrivateKey
	srv  *http.Server
}

func (k *keyServer) actorID(i int) string { return k.base + "/users/u" + strconv.Itoa(i) }

func startKeyServer(addr string, n int) (*keyServer, error) {
	k := &keyServer{rsa: make([]*rsa.PrivateKey, n), ed: make([]ed25519.PrivateKey, n)}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rk, err := rsa.GenerateKey(rand.Reader, 2048)
			if err != nil {
				errs <- err
				return
			}
			_, ek, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				errs <- err
				return
			}
			k.rsa[i], k.ed[i] = rk, ek
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, fmt.Errorf("generating keys: %w", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("key server: %w", err)
	}
	k.base = "http://" + ln.Addr().String()
	docs := make(map[string][]byte, n)
	for i := range n {
		id := k.actorID(i)
		der, err := x509.MarshalPKIXPublicKey(&k.rsa[i].PublicKey)
		if err != nil {
			return nil, err
		}
		doc := map[string]any{
			"@context": []any{"https://www.w3.org/ns/activitystreams", "https://w3id.org/security/v1",
				map[string]any{"Multikey": "https://w3id.org/security#Multikey",
					"assertionMethod":    map[string]any{"@id": "https://w3id.org/security#assertionMethod", "@type": "@id", "@container": "@set"},
					"controller":         map[string]any{"@id": "https://w3id.org/security#controller", "@type": "@id"},
					"publicKeyMultibase": "https://w3id.org/security#publicKeyMultibase"}},
			"id": id, "type": "Person", "preferredUsername": "u" + strconv.Itoa(i),
			"inbox": id + "/inbox", "outbox": id + "/outbox",
			"publicKey": map[string]any{"id": id + "#main-key", "owner": id,
				"publicKeyPem": string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))},
			"assertionMethod": []any{map[string]any{"id": id + "#ed25519-key", "type": "Multikey", "controller": id,
				"publicKeyMultibase": activitypub.EncodeMultibaseEd25519(k.ed[i].Public().(ed25519.PublicKey))}},
		}
		docs["/users/u"+strconv.Itoa(i)], _ = json.Marshal(doc)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{name}", func(w http.ResponseWriter, r *http.Request) {
		b, ok := docs["/users/"+r.PathValue("name")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/activity+json")
		_, _ = w.Write(b)
	})
	mux.HandleFunc("POST /users/{name}/inbox", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, 1<<20))
		w.WriteHeader(http.StatusAccepted)
	})
	k.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = k.srv.Serve(ln) }()
	return k, nil
}

func (k *keyServer) close() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = k.srv.Shutdown(ctx)
}

// presign returns n requests as HTTP/1.1 bytes, signed by the key server's actors in turn.
func presign(c config, target *url.URL, ks *keyServer, n int, tag string) ([][]byte, error) {
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	out := make([][]byte, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, runtime.NumCPU())
	for range runtime.NumCPU() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				b, err := signed(c.sig, target, ks, i%len(ks.rsa), fmt.Sprintf("%s-%s-%d", tag, run, i))
				if err != nil {
					errs <- err
					return
				}
				out[i] = b
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return nil, err
	}
	return out, nil
}

func signed(sig string, target *url.URL, ks *keyServer, a int, note string) ([]byte, error) {
	actor := ks.actorID(a)
	body, _ := json.Marshal(map[string]any{
		"@context": "https://www.w3.org/ns/activitystreams",
		"id":       actor + "/notes/" + note + "/activity", "type": "Create", "actor": actor,
		"to": []string{"https://www.w3.org/ns/activitystreams#Public"}, "cc": []string{actor + "/followers"},
		"object": map[string]any{"id": actor + "/notes/" + note, "type": "Note", "attributedTo": actor,
			"to": []string{"https://www.w3.org/ns/activitystreams#Public"}, "content": "<p>load " + note + "</p>",
			"published": time.Now().UTC().Format(time.RFC3339)},
	})
	req, err := http.NewRequest(http.MethodPost, target.String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/activity+json")
	req.Header.Set("Accept", "application/activity+json")
	switch sig {
	case "cavage":
		err = activitypub.SignCavage(req, body, ks.rsa[a], actor+"#main-key", activitypub.CavageOptions{})
	case "rfc9421-rsa":
		err = activitypub.SignRFC9421(activitypub.Message{Request: req}, body, ks.rsa[a],
			activitypub.RFC9421Options{KeyID: actor + "#main-key", Alg: activitypub.AlgRSAv15SHA256})
	case "rfc9421-ed25519":
		err = activitypub.SignRFC9421(activitypub.Message{Request: req}, body, ks.ed[a],
			activitypub.RFC9421Options{KeyID: actor + "#ed25519-key", Alg: activitypub.AlgEd25519RFC})
	default:
		return nil, fmt.Errorf("-sig %q: want cavage, rfc9421-rsa or rfc9421-ed25519", sig)
	}
	if err != nil {
		return nil, fmt.Errorf("signing: %w", err)
	}
	var b bytes.Buffer
	if err := req.Write(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
