/** Fashion-MNIST's class names, by label (Xiao et al. 2017); no Node imports, so pages can use it. */
export const FASHION_CLASSES = [
  'T-shirt/top',
  'Trouser',
  'Pullover',
  'Dress',
  'Coat',
  'Sandal',
  'Shirt',
  'Sneaker',
  'Bag',
  'Ankle boot',
] as const;
