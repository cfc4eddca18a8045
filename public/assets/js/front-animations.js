// Small page animations: reveal-on-scroll and header shadow. Does nothing when the visitor
// prefers reduced motion (content is visible by default; animations are only added on top).
(function () {
  'use strict';
  var reduce = window.matchMedia && window.matchMedia('(prefers-reduced-motion: reduce)').matches;
  var year = document.getElementById('year');
  if (year) year.textContent = String(new Date().getFullYear());

  var header = document.getElementById('site-header');
  if (header) {
    var onScroll = function () {
      var scrolled = window.scrollY > 8;
      header.classList.toggle('shadow-sm', scrolled);
      header.classList.toggle('border-slate-200', scrolled);
    };
    window.addEventListener('scroll', onScroll, { passive: true });
    onScroll();
  }

  if (reduce || !('IntersectionObserver' in window)) return;
  var started = performance.now();
  var io = new IntersectionObserver(function (entries) {
    entries.forEach(function (entry) {
      if (!entry.isIntersecting) return;
      io.unobserve(entry.target);
      // Already on screen at load: leave it alone (no flash); below the fold: fade in.
      if (performance.now() - started > 300) entry.target.classList.add('reveal-in');
    });
  }, { rootMargin: '0px 0px -8% 0px' });
  document.querySelectorAll('.reveal').forEach(function (el) { io.observe(el); });
})();
