#pragma once
// A project-owned stand-in for C++23 std::expected, with the same member
// names so that switching later is one alias. Only what Flurry uses.
#include <cassert>
#include <type_traits>
#include <utility>
#include <variant>

namespace flurry {

template <typename E>
class Unexpected {
 public:
  explicit Unexpected(E e) : error_(std::move(e)) {}
  E& error() & { return error_; }
  E&& error() && { return std::move(error_); }
  const E& error() const& { return error_; }

 private:
  E error_;
};

template <typename E>
Unexpected<std::decay_t<E>> unexpected(E&& e) {
  return Unexpected<std::decay_t<E>>(std::forward<E>(e));
}

template <typename T, typename E>
class [[nodiscard]] Expected {
 public:
  Expected() requires std::is_default_constructible_v<T> : v_(std::in_place_index<0>) {}
  Expected(T v) : v_(std::in_place_index<0>, std::move(v)) {}  // NOLINT: implicit like std::expected
  template <typename U>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::decay_t<U>, Expected> &&
             !std::is_same_v<std::decay_t<U>, Unexpected<E>> && !std::is_same_v<std::decay_t<U>, T>)
  Expected(U&& u) : v_(std::in_place_index<0>, T(std::forward<U>(u))) {}  // NOLINT
  template <typename G>
  Expected(Unexpected<G> u) : v_(std::in_place_index<1>, E(std::move(u.error()))) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & { assert(has_value()); return std::get<0>(v_); }
  const T& value() const& { assert(has_value()); return std::get<0>(v_); }
  T&& value() && { assert(has_value()); return std::get<0>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T&& operator*() && { return std::move(*this).value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  E& error() & { assert(!has_value()); return std::get<1>(v_); }
  const E& error() const& { assert(!has_value()); return std::get<1>(v_); }

  template <typename U>
  T value_or(U&& fallback) const& {
    return has_value() ? value() : static_cast<T>(std::forward<U>(fallback));
  }

 private:
  std::variant<T, E> v_;
};

template <typename E>
class [[nodiscard]] Expected<void, E> {
 public:
  Expected() = default;
  template <typename G>
  Expected(Unexpected<G> u) : error_(E(std::move(u.error()))), ok_(false) {}  // NOLINT

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  void value() const { assert(ok_); }
  const E& error() const { assert(!ok_); return error_; }

 private:
  E error_{};
  bool ok_ = true;
};

}  // namespace flurry
