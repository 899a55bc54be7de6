package statemachine

import (
	"errors"
	"fmt"

	"github.com/vmha/vmha/cluster/command"
	"github.com/vmha/vmha/model"
)

// onTokenCreate adds an API token: every field checked again (a command
// comes from the log, whoever wrote it), its ID new, and the number of
// tokens bounded.
func onTokenCreate(s *model.State, c *command.Command) error {
	if c.Token == nil {
		return errors.New("token_create: no token")
	}
	if err := command.ValidateToken(c.Token); err != nil {
		return err
	}
	if _, ok := s.Config.Tokens[c.Token.ID]; ok {
		return &command.ConflictError{What: fmt.Sprintf("token %s exists already", c.Token.ID)}
	}
	if n := len(s.Config.Tokens); n >= model.MaxTokens {
		expired := 0
		for _, t := range s.Config.Tokens {
			if t.Expired(c.At) {
				expired++
			}
		}
		return &command.ConflictError{What: fmt.Sprintf("the cluster holds %d tokens, the most it keeps (%d of them expired): revoke some first (vmha token list, vmha token revoke ID)", n, expired)}
	}
	if s.Config.Tokens == nil {
		s.Config.Tokens = map[string]*model.Token{}
	}
	cp := *c.Token
	s.Config.Tokens[cp.ID] = &cp
	return nil
}

// onTokenRevoke removes token c.Name: from this entry on, no host admits
// it.
func onTokenRevoke(s *model.State, c *command.Command) error {
	if err := command.ValidTokenID(c.Name); err != nil {
		return err
	}
	if _, ok := s.Config.Tokens[c.Name]; !ok {
		return &command.NotFoundError{Kind: "token", Name: c.Name}
	}
	delete(s.Config.Tokens, c.Name)
	return nil
}

// Token events name the token by its ID and its owner, never its hash.
func describeTokenCreate(_ *model.State, c *command.Command) []model.Event {
	t := c.Token
	if t == nil {
		return nil
	}
	return []model.Event{ev(c, model.EventCluster, t.ID, "token-create", "",
		fmt.Sprintf("token created for %s (%s, expires %s)", t.Owner, t.Role, t.Expires.UTC().Format("2006-01-02 15:04 MST")))}
}

func describeTokenRevoke(s *model.State, c *command.Command) []model.Event {
	reason := "token " + c.Name + " revoked"
	if t := s.Config.Tokens[c.Name]; t != nil {
		reason += " (" + t.Owner + ", " + t.Role + ")"
	}
	return []model.Event{ev(c, model.EventCluster, c.Name, "token-revoke", "", reason)}
}
