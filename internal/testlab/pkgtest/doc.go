// Package pkgtest tests the Debian package (tier 5 of DESIGN.md's testing:
// "the package installed with dpkg -i"): it builds it with the script make
// deb runs and installs, reinstalls, removes and purges it with the real
// dpkg in a private root, so the machine's own dpkg database and files are
// not touched. Only tests live here.
package pkgtest
