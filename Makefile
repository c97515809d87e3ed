# Build and install era-log-tools the way a distribution installs its storage tools.
#
#   make                                   release binaries (cargo build --release)
#   make install                           into /usr/local (PREFIX), as root
#   make install PREFIX=/usr DESTDIR=/tmp/stage
#   make uninstall                         with the PREFIX and DESTDIR of the install
#
# The tools are the binaries in src/bin (src/bin/TOOL.rs or src/bin/TOOL/main.rs): a new one
# is installed with its man page (man/TOOL.8) and completions (completions/), which
# `cargo run --example gen_docs` writes.

PREFIX ?= /usr/local
DESTDIR ?=
CARGO ?= cargo
INSTALL ?= install

sbindir = $(PREFIX)/sbin
man8dir = $(PREFIX)/share/man/man8
bashcompdir = $(PREFIX)/share/bash-completion/completions
zshcompdir = $(PREFIX)/share/zsh/site-functions
fishcompdir = $(PREFIX)/share/fish/vendor_completions.d

TOOLS := $(sort $(basename $(notdir $(wildcard src/bin/*.rs))) \
	$(notdir $(patsubst %/,%,$(dir $(wildcard src/bin/*/main.rs)))))
BINS := $(addprefix target/release/,$(TOOLS))
SOURCES := Cargo.toml Cargo.lock $(shell find src -name '*.rs')

.PHONY: all install uninstall print-tools

all: $(BINS)

# One cargo run builds every binary; make runs it only when a source is newer than the
# binaries (touched, since cargo leaves alone those it need not relink), so that
# `make && sudo make install` does not need cargo as root.
$(BINS) &: $(SOURCES)
	$(CARGO) build --release --locked --bins
	touch $(BINS)

install: $(BINS)
	$(INSTALL) -d $(DESTDIR)$(sbindir) $(DESTDIR)$(man8dir) $(DESTDIR)$(bashcompdir) \
		$(DESTDIR)$(zshcompdir) $(DESTDIR)$(fishcompdir)
	$(INSTALL) -m 755 $(BINS) $(DESTDIR)$(sbindir)/
	$(INSTALL) -m 644 $(TOOLS:%=man/%.8) $(DESTDIR)$(man8dir)/
	$(INSTALL) -m 644 $(TOOLS:%=completions/bash/%) $(DESTDIR)$(bashcompdir)/
	$(INSTALL) -m 644 $(TOOLS:%=completions/zsh/_%) $(DESTDIR)$(zshcompdir)/
	$(INSTALL) -m 644 $(TOOLS:%=completions/fish/%.fish) $(DESTDIR)$(fishcompdir)/

uninstall:
	rm -f $(TOOLS:%=$(DESTDIR)$(sbindir)/%) $(TOOLS:%=$(DESTDIR)$(man8dir)/%.8) \
		$(TOOLS:%=$(DESTDIR)$(bashcompdir)/%) $(TOOLS:%=$(DESTDIR)$(zshcompdir)/_%) \
		$(TOOLS:%=$(DESTDIR)$(fishcompdir)/%.fish)

# The tools, for scripts (.ci/run).
print-tools:
	@echo $(TOOLS)
