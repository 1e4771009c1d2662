# The example Flurry runs on `./flurry up`. It needs nothing from the
# network: every derivation is built by /bin/sh with shell builtins only.
{
  description = "Flurry example: three checks and an effect";

  outputs = { self }:
    let
      system = "x86_64-linux";
      sh = name: script: derivation {
        inherit name system;
        builder = "/bin/sh";
        args = [ "-c" script ];
      };
      hello = sh "hello" ''
        echo "building hello"
        echo "Hello from Flurry" > $out
      '';
    in
    {
      checks.${system} = {
        inherit hello;

        # Depends on hello: Flurry builds it only after hello succeeded.
        greeting-test = sh "greeting-test" ''
          read -r line < ${hello}
          echo "hello says: $line"
          case "$line" in
            "Hello from Flurry") echo ok > $out ;;
            *) echo "unexpected greeting" >&2; exit 1 ;;
          esac
        '';

        lint = sh "lint" ''
          echo "nothing to lint"
          echo ok > $out
        '';
      };

      # hercules-ci-effects compatible: runs after every check succeeded on
      # the default branch.
      herculesCI = args: {
        onPush.default.outputs.effects.announce = sh "announce" ''
          echo "deploying ${args.primaryRepo.rev or "unknown"} of ${args.primaryRepo.name or "?"}"
          echo done > $out
        '';
      };
    };
}
