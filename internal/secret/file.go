package secret

import (
	"fmt"
	"io"
	"os"
	"strings"
)

// maxPasswordFile bounds how much of a password file is read.
const maxPasswordFile = 4096

// FromFile reads a password from path, dropping one trailing
// newline. The file must be a regular file not readable by group or others
// (mode 0600 or 0400). Errors name the file, never its contents.
func FromFile(path string) (String, error) {
	f, err := os.Open(path)
	if err != nil {
		return String{}, err // *PathError: names the file
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return String{}, err
	}
	if !fi.Mode().IsRegular() {
		return String{}, fmt.Errorf("%s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o044 != 0 {
		return String{}, fmt.Errorf("%s has mode %04o: it must not be readable by group or others (chmod 600 %s)", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	if err != nil {
		return String{}, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > maxPasswordFile {
		return String{}, fmt.Errorf("%s is larger than %d bytes", path, maxPasswordFile)
	}
	v := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	if v == "" {
		return String{}, fmt.Errorf("%s is empty", path)
	}
	if strings.ContainsAny(v, "\r\n") {
		return String{}, fmt.Errorf("%s holds more than one line", path)
	}
	return New(v), nil
}
