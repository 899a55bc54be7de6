package clusterspec

import (
	"bytes"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/vmha/vmha/placement"
)

// The per-item edits (vmha rules location add, ...) change one constraint
// of a cluster.yaml text and keep the rest of it as the operator wrote it:
// they edit the YAML document, not the decoded Spec, so comments, order and
// flow style survive. The result is checked with Parse.

// AddLocation sets the location of vm on host to score in text: a location
// of vm on that host (host and score, not a rule) gets the new score (the
// bool is true), otherwise one is appended.
func AddLocation(text, vm, host string, score placement.Score) (string, bool, error) {
	if vm == "" || host == "" {
		return "", false, errors.New("a location needs a vm and a host")
	}
	return setItem(text, "locations", func(n *yaml.Node) bool {
		var l Location
		return n.Decode(&l) == nil && l.Rule == nil && l.VM == vm && l.Host == host
	}, Location{VM: vm, Host: host, Score: ptrScore(score)}, score)
}

// RemoveLocation removes the location of vm on host (host and score, not a
// rule) from text.
func RemoveLocation(text, vm, host string) (string, error) {
	return removeItem(text, "locations", func(n *yaml.Node) bool {
		var l Location
		return n.Decode(&l) == nil && l.Rule == nil && l.VM == vm && l.Host == host
	}, fmt.Sprintf("no location of vm %q on host %q in the rules (vmha rules show lists them)", vm, host))
}

// AddColocation sets the colocation of vm with with to score: an existing
// one of that pair (in that order) gets the new score (the bool is true),
// otherwise one is appended.
func AddColocation(text, vm, with string, score placement.Score) (string, bool, error) {
	if vm == "" || with == "" {
		return "", false, errors.New("a colocation needs a vm and a vm to go with")
	}
	return setItem(text, "colocations", func(n *yaml.Node) bool {
		var c Colocation
		return n.Decode(&c) == nil && c.VM == vm && c.With == with
	}, Colocation{VM: vm, With: with, Score: Score(score)}, score)
}

// RemoveColocation removes the colocation of vm with with from text.
func RemoveColocation(text, vm, with string) (string, error) {
	return removeItem(text, "colocations", func(n *yaml.Node) bool {
		var c Colocation
		return n.Decode(&c) == nil && c.VM == vm && c.With == with
	}, fmt.Sprintf("no colocation of vm %q with vm %q in the rules (vmha rules show lists them)", vm, with))
}

func ptrScore(s placement.Score) *Score {
	sc := Score(s)
	return &sc
}

func setItem(text, list string, match func(*yaml.Node) bool, item any, score placement.Score) (string, bool, error) {
	replaced := false
	out, err := editDoc(text, func(root *yaml.Node) error {
		seq, err := constraintList(root, list, true)
		if err != nil {
			return err
		}
		for _, n := range seq.Content {
			if n.Kind == yaml.MappingNode && match(n) {
				v, err := scoreNode(score)
				if err != nil {
					return err
				}
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == "score" {
						v.HeadComment, v.LineComment = n.Content[i+1].HeadComment, n.Content[i+1].LineComment
						n.Content[i+1] = v
						replaced = true
						return nil
					}
				}
			}
		}
		var n yaml.Node
		if err := n.Encode(item); err != nil {
			return err
		}
		n.Style = yaml.FlowStyle
		seq.Content = append(seq.Content, &n)
		return nil
	})
	return out, replaced, err
}

func removeItem(text, list string, match func(*yaml.Node) bool, none string) (string, error) {
	return editDoc(text, func(root *yaml.Node) error {
		seq, err := constraintList(root, list, false)
		if err != nil {
			return err
		}
		if seq == nil {
			return errors.New(none)
		}
		kept := seq.Content[:0:0]
		for _, n := range seq.Content {
			if n.Kind != yaml.MappingNode || !match(n) {
				kept = append(kept, n)
			}
		}
		if len(kept) == len(seq.Content) {
			return errors.New(none)
		}
		seq.Content = kept
		return nil
	})
}

func scoreNode(s placement.Score) (*yaml.Node, error) {
	var n yaml.Node
	err := n.Encode(Score(s))
	return &n, err
}

// editDoc runs edit on text's top mapping (an empty one for empty text)
// and returns the document written back, checked by Parse.
func editDoc(text string, edit func(root *yaml.Node) error) (string, error) {
	var doc yaml.Node
	if strings.TrimSpace(text) != "" {
		if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
			return "", friendly(err)
		}
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		doc = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.MappingNode, Tag: "!!map"}}}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return "", errors.New("the rules are not a YAML mapping")
	}
	if err := edit(root); err != nil {
		return "", err
	}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return "", err
	}
	if err := enc.Close(); err != nil {
		return "", err
	}
	if _, err := Parse(b.Bytes()); err != nil {
		return "", err
	}
	return b.String(), nil
}

// constraintList finds constraints.<list> in root, creating it (and
// constraints) when create is set; nil if absent otherwise.
func constraintList(root *yaml.Node, list string, create bool) (*yaml.Node, error) {
	cons, err := mapValue(root, "constraints", yaml.MappingNode, "!!map", create)
	if err != nil || cons == nil {
		return nil, err
	}
	return mapValue(cons, list, yaml.SequenceNode, "!!seq", create)
}

// mapValue is m's value under key, of kind; an absent or empty (null) one
// is created when create is set.
func mapValue(m *yaml.Node, key string, kind yaml.Kind, tag string, create bool) (*yaml.Node, error) {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			continue
		}
		v := m.Content[i+1]
		switch {
		case v.Kind == kind:
			return v, nil
		case v.Kind == yaml.ScalarNode && v.Tag == "!!null":
			if !create {
				return nil, nil
			}
			n := &yaml.Node{Kind: kind, Tag: tag, LineComment: v.LineComment}
			m.Content[i+1] = n
			return n, nil
		}
		return nil, fmt.Errorf("line %d: %s is not a %s", v.Line, key, map[yaml.Kind]string{yaml.MappingNode: "mapping", yaml.SequenceNode: "list"}[kind])
	}
	if !create {
		return nil, nil
	}
	n := &yaml.Node{Kind: kind, Tag: tag}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, n)
	return n, nil
}
